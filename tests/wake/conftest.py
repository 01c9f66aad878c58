"""A tiny untrained zoo for wiring tests: real transformers, random weights, seconds to build.

What the serving agents do with answers is tested here; how good the answers are is the
model core's business (tests/modelcore, and the README tables from the shipped zoo).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import LlamaForCausalLM

from agents.config import MetaSettings, SystemConfig, TrafficConfig
from modelcore.charset import char_tokenizer
from modelcore.encoding import TEMPLATE
from modelcore.zoo import META_FILE, Arch

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
def tiny_config(tiny_zoo: Path) -> SystemConfig:
    return SystemConfig(
        zoo=tiny_zoo,
        traffic=TrafficConfig(seed=3, cycles=2, queries_per_cycle=12, shadow=0.25),
        meta=MetaSettings(prior_gain=0.5),
    )
