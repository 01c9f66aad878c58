"""Fixtures shared by every test: an embedded broker per test, and backends to run on."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import LlamaForCausalLM

from modelcore.charset import char_tokenizer
from modelcore.encoding import TEMPLATE
from modelcore.zoo import META_FILE, Arch
from projections.projector import projector_on
from runtime.embedded import EmbeddedBroker
from runtime.stack import Stack, in_memory, running

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

StackFactory = Callable[..., AbstractAsyncContextManager[Stack]]


#: A tiny untrained zoo for wiring tests: real transformers, random weights, seconds to build.
MEMBERS = (("l0-a", 0, Arch(32, 1, 2, 64)), ("l0-b", 0, Arch(32, 1, 2, 64)),
           ("l0-c", 0, Arch(32, 1, 2, 64)), ("top", 1, Arch(48, 2, 2, 96)))


@pytest.fixture(scope="session")
def tiny_zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("zoo")
    tok = char_tokenizer()
    for i, (name, tier, arch) in enumerate(MEMBERS):
        torch.manual_seed(i)
        model = LlamaForCausalLM(arch.config(len(tok), tok.pad_token_id, tok.eos_token_id))
        out = root / name
        model.save_pretrained(out)
        tok.save_pretrained(out)
        meta = {"name": name, "tier": tier, "template": TEMPLATE,
                "params": sum(p.numel() for p in model.parameters())}
        (out / META_FILE).write_text(json.dumps(meta))
    return root


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
