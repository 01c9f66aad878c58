"""OpenAI-compatible HTTP front: `POST /v1/chat/completions` answered by the cohort.

A request becomes a QueryReceived on the gateway's topic (free-running: users never wait for
a cycle barrier); the reply is the answer the meta-selector accepted, with the member that
gave it and its cost in the body (`sleepwake`) and in `x-sleepwake-*` headers. It reads the
worker and meta-selector topics with a group of its own; it keeps no state worth replaying.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from faststream.asgi import AsgiFastStream
from faststream.asgi.types import Receive, Scope, Send
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from agents.runtime.bus import make_broker, subscriber
from agents.runtime.deadletters import decode_or_dead_letter
from events.codec import encode
from events.envelope import make_envelope
from events.serving import Accepted, QueryReceived, ResponseGenerated
from events.topology import topic_of
from events.vectors import encode_vector


class HttpGateway:
    def __init__(self, bootstrap: str, *, cycle_size: int = 64, timeout: float = 120.0,
                 broker: KafkaBroker | None = None) -> None:
        self.broker = broker or make_broker(bootstrap, client_id="sleepwake-http")
        self.instance = uuid.uuid4().hex[:8]
        self.cycle_size = cycle_size
        self.timeout = timeout
        self.served = 0
        self.pending: dict[str, asyncio.Future[tuple[Accepted, ResponseGenerated]]] = {}
        self.answers: dict[str, dict[str, ResponseGenerated]] = {}
        subscriber(self.broker, topic_of("worker"), topic_of("meta_selector"),
                   group_id=f"sw-http-{self.instance}", title="http:answers")(self.on_event)
        self.app = AsgiFastStream(self.broker,
                                  asgi_routes=[("/v1/chat/completions", self.chat)])

    async def on_event(self, body: bytes, msg: KafkaMessage) -> None:
        event = await decode_or_dead_letter(self.broker, "http", body, msg.raw_message)
        data = event.data if event else None
        if isinstance(data, ResponseGenerated) and data.query_id in self.pending:
            if not data.shadow:
                self.answers.setdefault(data.query_id, {})[data.model_id] = data
        elif isinstance(data, Accepted) and data.query_id in self.pending:
            self.answers.setdefault(data.query_id, {})
            self._try_resolve(data)

    def _try_resolve(self, verdict: Accepted, attempt: int = 0) -> None:
        future = self.pending.get(verdict.query_id)
        answer = self.answers.get(verdict.query_id, {}).get(verdict.model_id)
        if future is None or future.done():
            return
        if answer is not None:
            future.set_result((verdict, answer))
        elif attempt < 200:  # the answer's topic may be read just after the verdict's
            asyncio.get_running_loop().call_later(0.05, self._try_resolve, verdict, attempt + 1)

    async def ask(self, text: str) -> tuple[Accepted, ResponseGenerated, str]:
        from modelcore.embeddings import embed

        cycle = self.served // self.cycle_size
        self.served += 1
        qid = f"http-{self.instance}-{self.served:06d}"
        vector = (await asyncio.to_thread(embed, [text]))[0]
        future: asyncio.Future[tuple[Accepted, ResponseGenerated]] = (
            asyncio.get_running_loop().create_future())
        self.pending[qid] = future
        query = QueryReceived(query_id=qid, cycle=cycle, text=text,
                              embedding=encode_vector(vector))
        event = make_envelope(query, source=f"gateway/http-{self.instance}", subject=qid,
                              correlationid=f"cycle-{cycle}")
        await self.broker.publish(encode(event), topic=topic_of("gateway"), key=qid.encode())
        try:
            verdict, answer = await asyncio.wait_for(future, self.timeout)
        finally:
            self.pending.pop(qid, None)
            self.answers.pop(qid, None)
        return verdict, answer, qid

    async def chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI endpoint for `POST /v1/chat/completions`."""
        if scope["type"] != "http" or scope["method"] != "POST":
            await _reply(send, 405, {"error": {"message": "use POST"}})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            request = json.loads(body)
            text = next(m["content"] for m in reversed(request["messages"])
                        if m.get("role") == "user")
            if not isinstance(text, str) or not text.strip():
                raise ValueError("the last user message must be non-empty text")
        except (ValueError, KeyError, TypeError, StopIteration) as exc:
            await _reply(send, 400, {"error": {
                "message": f"expected {{'messages': [{{'role': 'user', 'content': '...'}}]}}: "
                f"{exc}", "type": "invalid_request_error"}})
            return
        try:
            verdict, answer, qid = await self.ask(text.strip())
        except TimeoutError:
            await _reply(send, 504, {"error": {"message": "no answer in time"}})
            return
        doc = {
            "id": f"chatcmpl-{qid}", "object": "chat.completion", "created": int(time.time()),
            "model": answer.model_id,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": answer.answer}}],
            "usage": {"prompt_tokens": answer.prompt_tokens,
                      "completion_tokens": answer.answer_tokens,
                      "total_tokens": answer.prompt_tokens + answer.answer_tokens},
            "sleepwake": {"query_id": qid, "model_id": answer.model_id, "tier": answer.tier,
                          "cost_norm": answer.cost_norm, "p_success": verdict.p_success,
                          "escalated": verdict.tier > 0},
        }
        await _reply(send, 200, doc, {"x-sleepwake-model": answer.model_id,
                                      "x-sleepwake-tier": str(answer.tier),
                                      "x-sleepwake-cost": f"{answer.cost_norm:.6f}"})


async def _reply(send: Send, status: int, doc: dict[str, Any],
                 headers: dict[str, str] | None = None) -> None:
    raw = json.dumps(doc).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    head += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": raw})
