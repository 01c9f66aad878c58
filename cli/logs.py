"""Logging for the commands: agent decisions at INFO, FastStream's per-message chatter off."""

from __future__ import annotations

import logging
import os
import warnings


def setup(verbose: bool) -> None:
    # transformers' notice about its own generate() internals says nothing a user can act on
    warnings.filterwarnings("ignore", message=".*past_key_values.*", category=FutureWarning)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("faststream").setLevel(logging.WARNING)
    logging.getLogger("sleepwake.faststream").setLevel(logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    logging.getLogger("kafka").setLevel(logging.ERROR)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # read when it sets up logging
