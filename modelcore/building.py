"""Process-wide rules for building and running models, whatever thread does it.

transformers replaces torch's global weight initialisers while it builds a model and puts
them back after; two builds in two threads can put back each other's replacements, and every
later module then starts uninitialised (measured: NaN answers when two workers loaded at
once). Every model, embedder and adapter build holds `BUILDING`.
"""

from __future__ import annotations

import threading

BUILDING = threading.Lock()


def one_torch_thread() -> None:
    """One intra-op thread in every process that runs a model: on shared cores more threads
    wait on each other, and the thread count changes float results in the last digits
    (an embedding, a confidence), which would make a run depend on its process layout."""
    import torch

    from modelcore.quiet import quiet_libraries

    torch.set_num_threads(1)
    quiet_libraries()
