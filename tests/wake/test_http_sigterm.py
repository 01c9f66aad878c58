"""`sleepwake http` as a process: SIGTERM stops it accepting, drains what is in flight, exits 0.

Its own module, so that no other server shares the cores while the process starts.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtime.embedded import EmbeddedBroker, free_port
from tests.wake.http_client import CHAT, ask, call, config_of, parsed

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]
STARTUP_S = 90  # imports, four models, topics, group joins; slow on shared cores


async def test_sigterm_drains_in_flight_requests_and_exits_0(
    kafka: EmbeddedBroker, tmp_path: Path, tiny_zoo: Path
) -> None:
    config = tmp_path / "config.json"
    config.write_text(config_of(tiny_zoo).model_dump_json())
    port, out = free_port(), tmp_path / "out.log"
    command = [sys.executable, "-m", "cli.main", "http", "--port", str(port), "--bootstrap",
               kafka.bootstrap, "--config", str(config), "--db", str(tmp_path / "http.duckdb"),
               "--timeout", "30"]
    with out.open("wb") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=os.environ, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            await until_listening(proc, port, out)
            body = json.dumps(ask("gcd: 12 18")).encode()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"POST {CHAT} HTTP/1.0\r\nHost: test\r\nContent-Type: application/json"
                         f"\r\nContent-Length: {len(body)}\r\n\r\n".encode())
            await writer.drain()
            await asyncio.sleep(0.5)  # the request is in flight: the front awaits its body
            proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(1.0)
            with pytest.raises(OSError):  # no longer accepting
                await asyncio.open_connection("127.0.0.1", port)
            writer.write(body)
            reply = parsed(await asyncio.wait_for(reader.read(), 30))
            writer.close()
            assert reply.status == 200, reply.body
            assert isinstance(reply.json()["choices"][0]["message"]["content"], str)
            assert await asyncio.to_thread(proc.wait, 20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert "drained and stopped" in out.read_text()


async def until_listening(proc: subprocess.Popen[bytes], port: int, out: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, out.read_text()
        try:
            if (await call(port, "GET", "/v1/models")).status == 200:
                return
        except OSError:
            await asyncio.sleep(0.2)
    raise TimeoutError(f"sleepwake http did not listen on {port} within {STARTUP_S}s")
