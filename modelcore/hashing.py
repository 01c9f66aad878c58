"""Content hashes for model and adapter directories (what events carry instead of weights)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def dir_sha256(path: str | Path) -> str:
    """sha256 over every regular file under `path`, in sorted relative-path order.

    Each file contributes its POSIX relative path, a NUL byte, its size as 8 big-endian bytes
    and its bytes, so renaming, moving or editing any file changes the hash. A single file is
    hashed the same way, with its own name as the relative path.
    """
    root = Path(path)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    h = hashlib.sha256()
    for f in files:
        rel = f.name if f == root else f.relative_to(root).as_posix()
        data = f.read_bytes()
        h.update(rel.encode() + b"\0" + len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


class HashMismatchError(ValueError):
    """A file's content does not match the sha256 an event announced for it."""
