"""OpenAI-compatible HTTP front: `POST /v1/chat/completions` and `GET /v1/models`.

The gateway agent's production form: a request becomes a QueryReceived on the gateway's topic
and the reply is the answer the meta-selector accepted. Like the gateway it announces its
cycles (`CycleOpened`, see `http_policy.Cycles`); at start it reads the gateway's topic to go
on after the cycles already there. It reads the worker and meta-selector topics with a group
of its own and keeps no other state. What is accepted, refused and replied is decided in
`http_policy`; this shell reads bounded bodies, publishes, waits (bounded by the timeout)
and writes bytes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faststream.asgi import AsgiFastStream
from faststream.asgi.types import ASGIApp, Message, Receive, Scope, Send
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from agents.config import SystemConfig
from agents.gateway.http_policy import (
    ChatRequest,
    CohortView,
    Cycles,
    Limits,
    Refusal,
    Reply,
    body_too_large,
    completion,
    method_not_allowed,
    model_list,
    not_found,
    parse_chat,
    prompt_budget,
    reply_headers,
    resume,
    server_error,
    stream_events,
    timed_out,
    user_query,
)
from events.codec import encode
from events.envelope import make_envelope
from events.serving import Accepted, CycleOpened, QueryReceived, ResponseGenerated
from events.topology import topic_of
from events.vectors import encode_vector
from runtime.bus import make_broker, subscriber
from runtime.deadletters import decode_record

CHAT = "/v1/chat/completions"
MODELS = "/v1/models"
log = logging.getLogger("sleepwake.http")


def cohort_view(config: SystemConfig) -> CohortView:
    """The members and the prompt characters all of them can read, from their model folders."""
    from agents.cohort import member_dir
    from agents.registry import cohort_of

    members = cohort_of(config).members
    budgets = [prompt_budget(*_context_of(member_dir(m.model_id, config.zoo))) for m in members]
    return CohortView(tuple(m.model_id for m in members), min(budgets))


def _context_of(folder: Path) -> tuple[int, str]:
    """A model folder's positions (HF config.json) and prompt template (zoo metadata)."""
    from modelcore.template import TEMPLATE
    from modelcore.zoo_files import META_FILE

    positions = int(json.loads((folder / "config.json").read_text())["max_position_embeddings"])
    meta_file = folder / META_FILE
    meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    return positions, str(meta.get("template", TEMPLATE))


@dataclass
class _Waiting:
    """One request in flight: the answers seen so far and the verdict, until both match."""

    future: asyncio.Future[tuple[Accepted, ResponseGenerated]]
    answers: dict[str, ResponseGenerated] = field(default_factory=dict)
    verdict: Accepted | None = None


class _Front(AsgiFastStream):
    """FastStream's ASGI app whose unknown paths answer in OpenAI's error shape."""

    async def not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().not_found(scope, receive, send)
            return
        await _refuse(send, not_found(str(scope.get("path", ""))))


class HttpGateway:
    """The front: an ASGI app (`app`) and the broker it publishes and reads answers with.

    `pending` holds the requests in flight, each until its answer or its timeout."""

    def __init__(self, bootstrap: str, config: SystemConfig, *, limits: Limits | None = None,
                 broker: KafkaBroker | None = None, instance: str | None = None) -> None:
        self.bootstrap = bootstrap
        self.broker = broker or make_broker(bootstrap, client_id="sleepwake-http")
        self.instance = instance or uuid.uuid4().hex[:8]
        self.traffic = config.traffic
        from agents.registry import router_of  # the traffic source's router, and its cost

        self.embed, self.router_cost = router_of(config)
        self.cohort = cohort_view(config)
        self.limits = limits or Limits()
        self.created = int(time.time())
        self.cycles = Cycles(config.traffic.queries_per_cycle)
        self.pending: dict[str, _Waiting] = {}
        self._background: set[asyncio.Task[None]] = set()
        subscriber(self.broker, topic_of("worker"), topic_of("meta_selector"),
                   group_id=f"sw-http-{self.instance}", title="http:answers")(self.on_event)
        self.app = _Front(self.broker, asgi_routes=[(CHAT, _guarded(self.chat)),
                                                    (MODELS, _guarded(self.models))],
                          after_startup=[self.resume], on_shutdown=[self.close])

    async def warm(self) -> None:
        """Load the router's embedding now, so that the first user does not wait for it."""
        await asyncio.to_thread(self.embed, ["warm up"])

    async def on_event(self, body: bytes, msg: KafkaMessage) -> None:
        """Match answers and verdicts to requests in flight. A record that does not decode is
        skipped (and logged): the grader reads the same topics and dead-letters it."""
        record: Any = msg.raw_message  # one ConsumerRecord: this subscriber is not batched
        event = decode_record(body, record, "http")
        data = getattr(event, "data", None)
        if not isinstance(data, ResponseGenerated | Accepted):
            return
        waiting = self.pending.get(data.query_id)
        if waiting is None:
            return
        if isinstance(data, Accepted):
            waiting.verdict = data
        elif not data.shadow:
            waiting.answers[data.model_id] = data
        _resolve(waiting)

    async def ask(self, text: str) -> Reply:
        """Publish a user query and wait for its accepted answer; TimeoutError past the limit.

        Once the query has an id its publish runs to the end even if the wait is given up
        (its cycle counts on it). The request's entry in `pending` goes in either case;
        answers that come later are dropped on arrival."""
        async with asyncio.timeout(self.limits.timeout):
            vector = (await asyncio.to_thread(self.embed, [text]))[0]
            self.cycles, qid, cycle = self.cycles.allot(self.instance)
            query = user_query(qid, cycle, text, encode_vector(vector), self.traffic.seed,
                               self.traffic.shadow, self.router_cost(text))
            waiting = self.pending[qid] = _Waiting(asyncio.get_running_loop().create_future())
            try:
                await asyncio.shield(self._in_background(self._publish(query)))
                verdict, answer = await waiting.future
            finally:
                del self.pending[qid]
        return Reply(query, verdict, answer)

    async def _publish(self, query: QueryReceived) -> None:
        published = False
        try:
            await self._send(query, query.query_id)
            published = True
        finally:
            self.cycles, opened = self.cycles.finish(query.cycle, published)
            if opened is not None:
                await self._send(opened, f"cycle-{opened.cycle}")

    async def _send(self, data: QueryReceived | CycleOpened, subject: str) -> None:
        """Publish as the gateway does: on its topic, keyed by subject."""
        cycle = f"cycle-{data.cycle}"
        event = make_envelope(data, source=f"gateway/http-{self.instance}", subject=subject,
                              correlationid=cycle)
        await self.broker.publish(encode(event), topic=topic_of("gateway"),
                                  key=subject.encode())

    def _in_background(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def resume(self) -> None:
        """Go on after the cycles already in the log, announcing any a stopped front left
        open (the broker must be connected)."""
        logged = await asyncio.to_thread(logged_cycles, self.bootstrap)
        self.cycles, missing = resume(self.traffic.queries_per_cycle, logged)
        for opened in missing:
            await self._send(opened, f"cycle-{opened.cycle}")

    async def close(self) -> None:
        """After the last request: let publishes end, then announce the partly filled cycle,
        so its queries' evidence closes too."""
        await asyncio.gather(*self._background, return_exceptions=True)
        self.cycles, opened = self.cycles.seal()
        if opened is not None:
            await self._send(opened, f"cycle-{opened.cycle}")

    async def chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        """`POST /v1/chat/completions`."""
        if scope["method"] != "POST":
            await _refuse(send, method_not_allowed("POST"))
            return
        raw = await _read_body(scope, receive, self.limits.max_body_bytes)
        if raw is None:
            await _refuse(send, body_too_large(self.limits.max_body_bytes))
            return
        request = parse_chat(raw, self.cohort, self.limits)
        if isinstance(request, Refusal):
            await _refuse(send, request)
            return
        try:
            reply = await self.ask(request.prompt)
        except TimeoutError:
            await _refuse(send, timed_out(self.limits.timeout))
            return
        await self._answer(send, request, reply)

    async def _answer(self, send: Send, request: ChatRequest, reply: Reply) -> None:
        created = int(time.time())
        headers = reply_headers(reply)
        if not request.stream:
            await _send_json(send, 200, completion(request, reply, created), headers)
            return
        head = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200,
                    "headers": head + _encoded(headers)})
        for chunk in stream_events(request, reply, created):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def models(self, scope: Scope, receive: Receive, send: Send) -> None:
        """`GET /v1/models`."""
        if scope["method"] != "GET":
            await _refuse(send, method_not_allowed("GET"))
            return
        await _send_json(send, 200, model_list(self.cohort, self.created))


def logged_cycles(bootstrap: str) -> list[tuple[str, int]]:
    """(type, cycle) of every CycleOpened and QueryReceived on the gateway's topic, read from
    its start up to its end as of now."""
    from runtime.positions import read_to_end

    return [fact for rec in read_to_end(bootstrap, [topic_of("gateway")])
            if (fact := _cycle_fact(rec)) is not None]


def _cycle_fact(record: Any) -> tuple[str, int] | None:
    event = decode_record(record.value, record, "http")
    data = getattr(event, "data", None)
    return (data.TYPE, data.cycle) if isinstance(data, CycleOpened | QueryReceived) else None


def _resolve(waiting: _Waiting) -> None:
    """Answer the request once its verdict and the answer it accepted have both arrived
    (they come on two topics, in either order)."""
    verdict = waiting.verdict
    answer = waiting.answers.get(verdict.model_id) if verdict else None
    if verdict is not None and answer is not None and not waiting.future.done():
        waiting.future.set_result((verdict, answer))


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The request body, or None as soon as it (declared or received) exceeds `limit`."""
    declared = dict(scope["headers"]).get(b"content-length")
    if declared is not None and int(declared) > limit:
        return None
    body = bytearray()
    while True:
        message = await receive()
        body += message.get("body", b"")
        if len(body) > limit:
            return None
        if not message.get("more_body"):
            return bytes(body)


def _guarded(handler: ASGIApp) -> ASGIApp:
    """An unexpected failure still answers in OpenAI's error shape (if nothing was sent)."""
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await handler(scope, receive, tracked)
        except Exception:
            log.exception("the HTTP front failed on %s %s", scope.get("method"), scope["path"])
            if not started:
                await _refuse(send, server_error())

    return app


def _encoded(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), v.encode()) for k, v in headers.items()]


async def _refuse(send: Send, refusal: Refusal) -> None:
    await _send_json(send, refusal.status, refusal.body())


async def _send_json(send: Send, status: int, doc: dict[str, Any],
                     headers: dict[str, str] | None = None) -> None:
    raw = json.dumps(doc).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    await send({"type": "http.response.start", "status": status,
                "headers": head + _encoded(headers or {})})
    await send({"type": "http.response.body", "body": raw})
