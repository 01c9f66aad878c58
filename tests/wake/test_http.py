"""A real OpenAI client gets an answer from the cohort over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.error
import urllib.request
from pathlib import Path

import openai
import pytest

from agents.config import SystemConfig
from cli.serve import serve_http
from runtime.embedded import EmbeddedBroker, free_port

pytestmark = pytest.mark.broker


async def test_openai_client_is_answered_with_model_and_cost(
    kafka: EmbeddedBroker, tmp_path: Path, tiny_config: SystemConfig
) -> None:
    port = free_port()
    ready = asyncio.Event()
    server = asyncio.create_task(
        serve_http(kafka.bootstrap, tmp_path / "http.duckdb", tiny_config, port, ready))
    try:
        async with asyncio.timeout(60):
            await ready.wait()
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused",
                               max_retries=0, timeout=120)
        raw = await asyncio.to_thread(
            client.chat.completions.with_raw_response.create,
            model="sleepwake", messages=[{"role": "user", "content": "gcd: 12 18"}])
        reply = raw.parse()
        assert reply.choices[0].message.role == "assistant"
        assert isinstance(reply.choices[0].message.content, str)
        assert reply.model == raw.headers["x-sleepwake-model"]
        assert float(raw.headers["x-sleepwake-cost"]) > 0
        assert reply.usage is not None and reply.usage.total_tokens > 0
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions",
                                         data=b'{"x": 1}', method="POST")
        with pytest.raises(urllib.error.HTTPError) as bad:
            await asyncio.to_thread(urllib.request.urlopen, request)
        assert bad.value.code == 400
        assert "messages" in json.loads(bad.value.read())["error"]["message"]
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server
