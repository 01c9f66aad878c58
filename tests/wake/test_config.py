"""A bad configuration fails at start, naming the field and what is allowed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agents.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_invalid_field_names_the_field_and_the_bound(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"traffic": {"shadow": 1.5, "cycles": 0}}))
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert "traffic.shadow" in str(err.value) and "less than or equal to 1" in str(err.value)
    assert "traffic.cycles" in str(err.value)


def test_unknown_keys_and_missing_files_are_refused(tmp_path: Path) -> None:
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps({"trafic": {}}))
    with pytest.raises(ConfigError, match="trafic"):
        load_config(typo)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.json")


def test_run_command_stops_before_starting_anything(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"meta": {"delta": 2}}))
    out = subprocess.run([sys.executable, "-m", "cli.main", "run", "--config", str(bad)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "meta.delta" in out.stderr
