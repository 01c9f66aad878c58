"""Fixtures shared by every test: an embedded broker per test, and backends to run on."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from projections.projector import projector_on
from runtime.embedded import EmbeddedBroker
from runtime.stack import Stack, in_memory, running

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

StackFactory = Callable[..., AbstractAsyncContextManager[Stack]]


@pytest.fixture
def kafka() -> Iterator[EmbeddedBroker]:
    """A fresh embedded broker (starts in well under a second): tests never share a log."""
    with EmbeddedBroker() as broker:
        yield broker


@pytest.fixture(params=["memory", "kafka"])
def backend(request: pytest.FixtureRequest) -> Iterator[tuple[str, StackFactory]]:
    """Run a test once on FastStream's in-memory broker and once on the real broker."""
    if request.param == "memory":
        yield "memory", lambda names, db, **kw: in_memory(names, _follow(db), **kw)
        return
    with EmbeddedBroker() as broker:
        def factory(names: list[str], db: Any, **kw: Any) -> AbstractAsyncContextManager[Stack]:
            return running(names, _follow(db), bootstrap=broker.bootstrap, **kw)
        yield "kafka", factory


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "projection.duckdb"


def _follow(db: Any) -> Any:
    return projector_on(db) if db is not None else None
