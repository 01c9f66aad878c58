"""The HTTP front as clients see it, over the real embedded broker and the tiny zoo.

One server serves the whole module (starting the cohort takes seconds). Requests go over raw
HTTP/1.0 sockets (tests/wake/http_client.py), so a test can send what no well-behaved client
would (broken JSON, endless bodies).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import openai
import pytest
import pytest_asyncio

from agents.gateway.http import HttpGateway, logged_cycles
from agents.gateway.http_policy import ANSWER_TOKENS, EXPECTED, Limits, user_query
from agents.gateway.policy import is_shadow
from cli.serve import HttpServing, http_front
from events.codec import encode
from events.envelope import make_envelope
from events.serving import CycleOpened
from events.topology import topic_of
from runtime.admin import ensure_topics
from runtime.embedded import EmbeddedBroker, free_port
from tests.wake.http_client import (
    CHAT,
    CYCLE,
    SEED,
    SHARE,
    Http,
    ask,
    call,
    chat,
    config_of,
    parsed,
)

pytestmark = [pytest.mark.broker, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(tiny_zoo: Path, tmp_path_factory: pytest.TempPathFactory
                 ) -> AsyncIterator[HttpServing]:
    db = tmp_path_factory.mktemp("http") / "http.duckdb"
    with EmbeddedBroker() as broker:
        async with http_front(broker.bootstrap, db, config_of(tiny_zoo), free_port(),
                              Limits(timeout=60)) as serving:
            yield serving


def assert_error(reply: Http, status: int, *, code: str | None = None,
                 mentions: str = "") -> dict[str, Any]:
    assert reply.status == status, reply.body
    assert reply.headers["content-type"] == "application/json"
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert code is None or error["code"] == code, error
    assert mentions in error["message"], error
    return dict(error)


DEEP = b"[" * 10_000 + b"]" * 10_000
MALFORMED: dict[str, tuple[bytes | dict[str, Any], str | None]] = {
    "not JSON": (b"hello", "invalid_json"),
    "empty body": (b"", "invalid_json"),
    "not UTF-8": (b'{"messages": "\xff\xfe"}', "invalid_json"),
    "JSON array": (b"[1, 2, 3]", "invalid_type"),
    "messages missing": ({"model": "sleepwake"}, "missing"),
    "messages an object": ({"messages": {"role": "user", "content": "hi"}}, "invalid_type"),
    "messages empty": ({"messages": []}, "invalid_type"),
    "messages a string": ({"messages": "hello"}, "invalid_type"),
    "messages of numbers": ({"messages": [1, 2, 3]}, "invalid_type"),
    "content missing": ({"messages": [{"role": "user"}]}, "invalid_type"),
    "content a number": (ask(5), "invalid_type"),
    "content null": (ask(None), "invalid_type"),
    "role missing": ({"messages": [{"content": "hi"}]}, "invalid_type"),
    "no user message": ({"messages": [{"role": "system", "content": "hi"}]}, "missing"),
    "blank prompt": (ask("   "), "invalid_type"),
    "lone surrogate": (b'{"messages": [{"role": "user", "content": "\\ud800"}]}',
                       "invalid_type"),
    "10,000 nested lists": (DEEP, "invalid_json"),
    "deep messages": (b'{"messages": ' + DEEP + b"}", "invalid_json"),
    "model a number": ({**ask("hi"), "model": 5}, "invalid_type"),
    "max_tokens text": (ask("hi", max_tokens="ten"), "invalid_type"),
    "max_tokens zero": (ask("hi", max_tokens=0), "invalid_type"),
    "max_tokens true": (ask("hi", max_tokens=True), "invalid_type"),
    "stream text": (ask("hi", stream="yes"), "invalid_type"),
    "huge integer": (b'{"messages": [], "max_tokens": ' + b"9" * 5000 + b"}", "invalid_json"),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
async def test_malformed_requests_get_a_400_naming_the_expected_shape(
    served: HttpServing, case: str
) -> None:
    body, code = MALFORMED[case]
    assert_error(await chat(served.port, body), 400, code=code, mentions=EXPECTED)


async def test_wrong_model_method_and_path_are_4xx_in_openai_shape(served: HttpServing) -> None:
    port = served.port
    unknown = assert_error(await chat(port, {**ask("hi"), "model": "gpt-4o"}), 404,
                           code="model_not_found", mentions="/v1/models")
    assert unknown["param"] == "model"
    assert_error(await call(port, "GET", CHAT), 405, mentions="POST")
    assert_error(await call(port, "POST", "/v1/models"), 405, mentions="GET")
    assert_error(await call(port, "GET", "/v1/embeddings"), 404, mentions=CHAT)


async def test_bodies_over_the_limit_are_413_without_being_read(served: HttpServing) -> None:
    port, limit = served.port, served.front.limits.max_body_bytes
    assert limit == 64 * 1024
    declared = f"Content-Type: application/json\r\nContent-Length: {100 * 2**20}\r\n"
    started = time.monotonic()
    reply = await call(port, "POST", CHAT, b"{" * 1024, head=declared)  # 1 KiB of 100 MiB
    assert_error(reply, 413, code="request_too_large", mentions=str(limit))
    assert time.monotonic() - started < 5
    assert_error(await chat(port, b" " * (limit + 1)), 413)
    # chunked: no length declared, so the front must count what arrives and stop early
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"POST {CHAT} HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n"
                 "Connection: close\r\n\r\n".encode())
    for _ in range(9):  # 72 KiB, and never the final empty chunk
        writer.write(b"2000\r\n" + b" " * 0x2000 + b"\r\n")
    await writer.drain()
    assert_error(parsed(await asyncio.wait_for(reader.read(), 10)), 413)
    writer.close()
    # under the limit the body is read and judged on its content
    assert_error(await chat(port, {"pad": "x" * (limit - 100)}), 400, code="missing")


async def test_prompt_length_rules(served: HttpServing) -> None:
    port, budget = served.port, served.front.cohort.context_chars
    assert budget == 64 - len("=") - ANSWER_TOKENS  # tiny zoo: 64 positions, "{query}="
    assert_error(await chat(port, ask("1" * 5000)), 400, code="string_above_max_length",
                 mentions="4096")
    assert_error(await chat(port, ask("1" * (budget + 1))), 400,
                 code="context_length_exceeded", mentions=str(budget))
    fits = await chat(port, ask("1" * budget))
    assert fits.status == 200, fits.body
    assert fits.json()["usage"]["prompt_tokens"] == budget + 1  # the rendered prompt


async def test_a_request_past_its_timeout_gets_504_and_leaves_nothing_pending(
    served: HttpServing
) -> None:
    front = served.front
    limits = front.limits
    front.limits = replace(limits, timeout=0.02)
    try:
        reply = await chat(served.port, ask("gcd: 12 18"))
    finally:
        front.limits = limits
    error = assert_error(reply, 504, code="timeout")
    assert error["type"] == "timeout_error"
    assert front.pending == {}
    await asyncio.sleep(1.0)  # the cohort still answers it; the late answer is dropped
    assert front.pending == {}
    assert (await chat(served.port, ask("gcd: 12 18"))).status == 200  # and it serves on


async def test_content_parts_are_joined_and_only_text_is_accepted(served: HttpServing) -> None:
    parts = [{"type": "text", "text": "gcd: "}, {"type": "text", "text": "12 18"}]
    reply = await chat(served.port, ask(parts))
    assert reply.status == 200, reply.body
    assert reply.json()["usage"]["prompt_tokens"] == len("gcd: 12 18=")
    image = [{"type": "text", "text": "what is this"},
             {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]
    error = assert_error(await chat(served.port, ask(image)), 400,
                         code="unsupported_content", mentions='{"type": "text"')
    assert error["param"] == "messages[0].content[1]"
    assert_error(await chat(served.port, ask([{"type": "text"}])), 400)
    assert_error(await chat(served.port, ask(["gcd: 12 18"])), 400)


async def test_stream_true_answers_in_openai_chunks(served: HttpServing) -> None:
    reply = await chat(served.port, ask("reverse: abc", stream=True))
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == "text/event-stream"
    events = reply.body.decode().split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert {c["model"] for c in chunks} == {reply.headers["x-sleepwake-model"]}
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] in {"stop", "length"}
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{served.port}/v1", api_key="unused",
                           max_retries=0, timeout=60)

    def streamed() -> list[Any]:
        return list(client.chat.completions.create(
            model="sleepwake", stream=True, max_tokens=2,
            messages=[{"role": "user", "content": "gcd: 12 18"}]))

    got = await asyncio.to_thread(streamed)
    text = "".join(c.choices[0].delta.content or "" for c in got if c.choices)
    assert len(text) <= 2 and got[-1].choices[0].finish_reason in {"stop", "length"}


async def test_models_lists_the_members_and_the_virtual_model(served: HttpServing) -> None:
    reply = await call(served.port, "GET", "/v1/models")
    assert reply.status == 200
    doc = reply.json()
    assert doc["object"] == "list"
    assert [m["id"] for m in doc["data"]] == ["sleepwake", "l0-a", "l0-b", "l0-c", "top"]
    assert all(m["object"] == "model" and m["owned_by"] == "sleepwake" for m in doc["data"])
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{served.port}/v1", api_key="unused",
                           max_retries=0)
    listed = await asyncio.to_thread(lambda: [m.id for m in client.models.list()])
    assert listed == [m["id"] for m in doc["data"]]


async def test_fifty_concurrent_clients_all_get_answers(served: HttpServing) -> None:
    async def timed(i: int) -> tuple[float, Http]:
        started = time.monotonic()
        reply = await chat(served.port, ask(f"gcd: {i + 6} {2 * i + 4}"))
        return time.monotonic() - started, reply

    results = await asyncio.gather(*(timed(i) for i in range(50)))
    assert [r.status for _, r in results] == [200] * 50
    docs = [r.json() for _, r in results]
    assert all(isinstance(d["choices"][0]["message"]["content"], str) for d in docs)
    assert len({d["sleepwake"]["query_id"] for d in docs}) == 50
    assert served.front.pending == {}
    latencies = sorted(t for t, _ in results)
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, round(0.99 * len(latencies)) - 1)]
    print(f"\n50 concurrent requests: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
          f"max {latencies[-1] * 1000:.0f} ms")


async def test_user_queries_are_shadow_sampled_and_graded_by_agreement(
    served: HttpServing
) -> None:
    replies: list[dict[str, Any]] = []
    while sum(r["sleepwake"]["shadow"] for r in replies) < 2 and len(replies) < 200:
        batch = await asyncio.gather(*(chat(served.port, ask(f"reverse: ab{i}"))
                                       for i in range(8)))
        replies += [r.json() for r in batch]
    stack = served.stack
    await stack.settle()
    mine = [r["sleepwake"] for r in replies]
    rows = {q: (cycle, shadow, family) for q, cycle, shadow, family in await stack.query(
        "SELECT query_id, cycle, shadow, family FROM q_received WHERE query_id LIKE 'http-%'")}
    for r in mine:
        qid = r["query_id"]
        n = int(qid.rsplit("-", 1)[1])
        assert rows[qid] == ((n - 1) // CYCLE, is_shadow(SEED, qid, SHARE), None)
        assert r["shadow"] == rows[qid][1] and r["tier"] == 0
    shadows = [r["query_id"] for r in mine if r["shadow"]]
    marks = ", ".join("?" for _ in shadows)
    above = await stack.query("SELECT DISTINCT query_id FROM q_answers WHERE tier = 1 AND "
                              f"shadow AND query_id IN ({marks})", shadows)
    assert {q for (q,) in above} == set(shadows)  # the upper tier answered every one
    grades = await stack.query("SELECT query_id, method FROM q_grades WHERE final AND "
                               f"query_id IN ({marks})", shadows)
    assert {q for q, _ in grades} == set(shadows)
    assert {m for _, m in grades} == {"agreement"}
    # what users taught: the meta-selector's calibration is fitted from these agreement
    # grades alone (no benchmark traffic runs here)
    meta = stack.agents["meta_selector"].state
    graded = {g.version for g in meta.graded}
    assert meta.closure.through >= 0 and graded
    assert graded & set(meta.evidence.calibrators)


async def test_a_restarted_front_goes_on_after_the_cycles_in_the_log(
    kafka: EmbeddedBroker, tiny_zoo: Path
) -> None:
    """A front that died in cycle 1 left it unannounced: the next one announces it with the
    queries it holds (so the grader can close it) and numbers its own from cycle 2."""
    await asyncio.to_thread(ensure_topics, kafka.bootstrap, 3)
    front = HttpGateway(kafka.bootstrap, config_of(tiny_zoo))
    async with front.broker:
        await front.broker.connect()
        await front.resume()
        assert front.cycles.first == 0  # an empty log
        logged = [CycleOpened(cycle=0, queries=CYCLE, mode="free"),
                  *(user_query(f"q{i}", i // CYCLE, "gcd: 12 18", "", SEED, SHARE)
                    for i in range(CYCLE + 2))]
        for data in logged:
            await front.broker.publish(encode(make_envelope(data, source="gateway/test",
                                                            subject="s")),
                                       topic=topic_of("gateway"))
        await front.resume()
        assert front.cycles.first == 2
        await front.resume()  # announced once: a second start finds it announced
        assert front.cycles.first == 2
    after = await asyncio.to_thread(logged_cycles, kafka.bootstrap)
    assert after.count(("CycleOpened", 1)) == 1 and after.count(("QueryReceived", 1)) == 2
