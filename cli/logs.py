"""Logging for the commands: agent decisions at INFO, FastStream's per-message chatter off."""

from __future__ import annotations

import logging


def setup(verbose: bool) -> None:
    from modelcore.quiet import quiet_libraries

    quiet_libraries()
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("faststream").setLevel(logging.WARNING)
    logging.getLogger("sleepwake.faststream").setLevel(logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    logging.getLogger("kafka").setLevel(logging.ERROR)
