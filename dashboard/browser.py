"""Headless Chromium (Debian's `chromium`, installed by setup.sh) for the dashboard: the page
as the browser renders it (DOM after its scripts ran) and its screenshot.

    python -m dashboard.browser http://127.0.0.1:8050 docs/ui.png
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: Flags for a quiet, offline, sandbox-free headless run (containers run as root).
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio")


class BrowserError(RuntimeError):
    pass


def chromium() -> str | None:
    """The Chromium binary, or None where none is installed."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    return None


def _run(url: str, args: list[str], budget_ms: int, timeout: float) -> str:
    binary = chromium()
    if binary is None:
        raise BrowserError("no chromium: run ./setup.sh (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="sleepwake-chromium-") as profile:
        done = subprocess.run(
            [binary, *FLAGS, f"--user-data-dir={profile}",
             f"--virtual-time-budget={budget_ms}", *args, url],
            capture_output=True, text=True, timeout=timeout, cwd=profile,
        )
    if done.returncode != 0:
        raise BrowserError(f"chromium exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def dom(url: str, budget_ms: int = 10_000, timeout: float = 120.0) -> str:
    """The page's DOM once its scripts have run for `budget_ms` of virtual time."""
    return _run(url, ["--dump-dom"], budget_ms, timeout)


def screenshot(url: str, out: Path, size: tuple[int, int] = (1600, 1140),
               budget_ms: int = 10_000, timeout: float = 120.0) -> Path:
    """A PNG of the rendered page (`size` is the window, width x height)."""
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    _run(url, [f"--screenshot={out}", f"--window-size={size[0]},{size[1]}"], budget_ms, timeout)
    if not out.is_file():
        raise BrowserError(f"chromium wrote no screenshot to {out}")
    return out


if __name__ == "__main__":  # pragma: no cover - a maintainer's tool
    if len(sys.argv) != 3:
        sys.exit("usage: python -m dashboard.browser URL OUT.png")
    print(screenshot(sys.argv[1], Path(sys.argv[2])))
