"""A raw HTTP/1.0 client and the configuration the HTTP front tests serve with.

Raw sockets, so a test can send what no well-behaved client would (broken JSON, endless
bodies, a body held back while the server is told to stop).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.config import MetaSettings, SystemConfig, TrafficConfig
from tests.wake.builders import WAKE_ONLY

CHAT = "/v1/chat/completions"
SEED, SHARE, CYCLE = 3, 0.25, 12


def config_of(zoo: Path) -> SystemConfig:
    """The tiny zoo that never escalates (no expected gain): answers stay at tier 0, so the
    top tier answers only shadow queries and the grader has something above to agree with."""
    return SystemConfig(zoo=zoo, traffic=TrafficConfig(seed=SEED, cycles=2,
                                                       queries_per_cycle=CYCLE, shadow=SHARE),
                        meta=MetaSettings(prior_gain=-1.0), sleep=WAKE_ONLY)


@dataclass(frozen=True)
class Http:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def parsed(raw: bytes) -> Http:
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(":", 1) for line in lines)
    return Http(int(status.split()[1]), {k.lower(): v.strip() for k, v in headers.items()}, body)


async def call(port: int, method: str, path: str, body: bytes = b"",
               head: str | None = None) -> Http:
    """One HTTP/1.0 exchange (the server closes after its reply, so read to the end)."""
    head = head or f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"{method} {path} HTTP/1.0\r\nHost: test\r\n{head}\r\n".encode() + body)
        await writer.drain()
        return parsed(await reader.read())
    finally:
        writer.close()


async def chat(port: int, doc: Any) -> Http:
    return await call(port, "POST", CHAT, doc if isinstance(doc, bytes) else
                      json.dumps(doc).encode())


def ask(text: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "sleepwake", "messages": [{"role": "user", "content": text}], **extra}


