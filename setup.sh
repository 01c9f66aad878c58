#!/usr/bin/env bash
# One-time setup on a fresh machine: a virtualenv with sleepwake and its tools.
# torch is pinned to 2.13.0 in pyproject.toml so pip takes the CPU build on this disk
# instead of pulling a multi-GB CUDA build. docker-compose (Debian's, v1) only validates
# docker-compose.yml in the tests; no Docker engine is needed.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
if ! command -v docker-compose >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get install -y -q docker-compose >/dev/null 2>&1 ||
   (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q docker-compose >/dev/null 2>&1)) ||
   echo "setup: could not install docker-compose; the compose validation test will be skipped" >&2
fi
# Debian's Chromium, headless: the dashboard's browser test (tests/ops/test_ui.py) renders
# `sleepwake ui` in it and takes its screenshot. Idempotent; sudo only when not root.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null; } ||
    echo "setup: could not install chromium; the dashboard's browser test will fail" >&2
fi
echo "setup done: source .venv/bin/activate, then: sleepwake --help"
