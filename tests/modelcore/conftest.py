"""Fixtures: a tiny, briefly trained zoo member in a temp dir (seconds, no shipped weights)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from modelcore.zoo import Arch, MemberSpec, train_member

TINY = MemberSpec(
    "tiny",
    0,
    ("reverse",),
    Arch(hidden=32, layers=1, heads=2, intermediate=64),
    steps=30,
    batch_size=16,
    examples_per_cell=100,
    seed=5,
)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_member(TINY, tmp_path_factory.mktemp("zoo"))
