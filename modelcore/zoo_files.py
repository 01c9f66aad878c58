"""Where the zoo lives on disk: light enough for any agent to import (no torch)."""

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "zoo_weights"
META_FILE = "sleepwake.json"
