"""Keep the model libraries' own chatter (weight-loading bars, notices about their internals)
out of what a user sees: it says nothing they can act on."""

from __future__ import annotations

import os
import sys
import warnings


def quiet_libraries() -> None:
    """Through the environment, which the libraries read when they are imported (importing
    transformers here would cost the CLI seconds before it does anything); a library already
    imported is told directly."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' bars too
    warnings.filterwarnings("ignore", message=".*past_key_values.*", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*",
                            category=FutureWarning)
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
