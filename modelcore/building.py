"""One lock for building models in any thread of a process.

transformers replaces torch's global weight initialisers while it builds a model and puts
them back after; two builds in two threads can put back each other's replacements, and every
later module then starts uninitialised (measured: NaN answers when two workers loaded at
once). Every model, embedder and adapter build holds `BUILDING`.
"""

from __future__ import annotations

import threading

BUILDING = threading.Lock()
