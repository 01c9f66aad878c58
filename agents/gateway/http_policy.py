"""What the HTTP front decides, apart from its I/O: what a request asks, what is refused, and
what the reply says. Pure (no I/O, no clock), so every rule is testable without a server and
the ASGI shell (`http.py`) only moves bytes.

Rules:

* A request is a JSON object in OpenAI's chat shape (`EXPECTED`). Anything else is refused
  with a 4xx in OpenAI's error shape whose message names that shape; never a 500.
* The prompt is the last user message: a string, or OpenAI content parts of type "text" joined
  in order. Earlier turns and system messages are not sent: the models answer single queries.
* Prompt length: at most `Limits.max_prompt_chars` characters, and at most `context_chars`,
  what every member can read. The zoo shares a character tokenizer (one token per character;
  characters outside its set become one unknown token each, so never more tokens than
  characters), and a member reads the prompt rendered through its template plus up to
  `ANSWER_TOKENS` answer tokens within `max_position_embeddings`. Any member may be routed
  or escalated to, so the rule takes the smallest budget; a longer prompt gets a 400
  (`context_length_exceeded`) instead of a member that cannot read it.
* `max_tokens` (or `max_completion_tokens`) cuts the answer to that many tokens (characters);
  the cut answer ends with `finish_reason: "length"`.
* `stream: true` is answered as Server-Sent Events in OpenAI's chunk format; the cohort gives
  its answer whole, so it comes as one content chunk.
* Cycles: the front numbers user queries into cycles of the traffic's `queries_per_cycle` and
  announces each with `CycleOpened` once its queries are published (see `Cycles`), so the
  grader can close it and the next cycle gets routed. One front (or benchmark gateway)
  numbers the cycles of a log; a restarted front goes on after the cycles already there.
* User queries carry no task reference (nothing to grade them against) and are shadow-sampled
  like benchmark queries (`is_shadow` on the traffic seed and share), so the grader can grade
  them by agreement with the tier above.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from agents.gateway.policy import is_shadow
from events.serving import Accepted, CycleOpened, QueryReceived, ResponseGenerated

#: The most tokens a worker generates for one answer (`ModelBackend.generate`'s default).
ANSWER_TOKENS = 16
#: The model name that lets the cohort route (the reply names the member that answered).
VIRTUAL_MODEL = "sleepwake"
EXPECTED = '{"model": "sleepwake", "messages": [{"role": "user", "content": "gcd: 12 18"}]}'
TEXT_PART = '{"type": "text", "text": "..."}'


@dataclass(frozen=True)
class Limits:
    """What one request may take; a client over a limit gets a 4xx (or 504), not a wait."""

    max_body_bytes: int = 64 * 1024
    max_prompt_chars: int = 4096
    timeout: float = 120.0


@dataclass(frozen=True)
class CohortView:
    """What the front knows of the cohort: member ids and the prompt characters all can read."""

    models: tuple[str, ...]
    context_chars: int


@dataclass(frozen=True)
class ChatRequest:
    prompt: str
    model: str
    stream: bool
    max_tokens: int | None


@dataclass(frozen=True)
class Reply:
    """A served query: what was asked, the verdict that accepted an answer, and that answer."""

    query: QueryReceived
    verdict: Accepted
    answer: ResponseGenerated


class Refusal(Exception):
    """A request the front will not serve: an HTTP status and OpenAI's error object."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.kind = kind

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param,
                          "code": self.code}}


def _shape(message: str, param: str | None, code: str = "invalid_type") -> Refusal:
    """A malformed request: the message says what is wrong and what a good body looks like."""
    return Refusal(400, f"{message}; expected a body like {EXPECTED}", param=param, code=code)


def prompt_budget(max_positions: int, template: str) -> int:
    """Prompt characters one member can read: its context less the template and the answer."""
    return max_positions - len(template.format(query="")) - ANSWER_TOKENS


def parse_chat(raw: bytes, cohort: CohortView, limits: Limits) -> ChatRequest | Refusal:
    """The request a body makes, or why it is refused."""
    try:
        doc = _json(raw)
        if not isinstance(doc, dict):
            raise _shape(f"the body is a JSON {type(doc).__name__}, not an object", None)
        request = ChatRequest(prompt=_prompt(doc), model=_model(doc.get("model"), cohort),
                              stream=_stream(doc.get("stream")), max_tokens=_max_tokens(doc))
        _check_length(request.prompt, cohort, limits)
        return request
    except Refusal as refusal:
        return refusal


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except RecursionError:
        raise _shape("the body nests too deeply", None, "invalid_json") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too many digits
        raise _shape(f"the body is not JSON ({exc})", None, "invalid_json") from None


def _model(value: Any, cohort: CohortView) -> str:
    if value is None:
        return VIRTUAL_MODEL
    if not isinstance(value, str):
        raise _shape("model must be a string", "model")
    known = (VIRTUAL_MODEL, *cohort.models)
    if value not in known:
        raise Refusal(404, f"model {value!r} does not exist; use {VIRTUAL_MODEL!r} (the cohort "
                      f"routes) or one of GET /v1/models: {', '.join(known)}",
                      param="model", code="model_not_found")
    return value


def _stream(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    raise _shape("stream must be true or false", "stream")


def _max_tokens(doc: dict[str, Any]) -> int | None:
    found = None
    for key in ("max_tokens", "max_completion_tokens"):
        value = doc.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _shape(f"{key} must be a positive integer", key)
        found = value if found is None else min(found, value)
    return found


def _prompt(doc: dict[str, Any]) -> str:
    messages = doc.get("messages")
    if messages is None:
        raise _shape("messages is missing", "messages", "missing")
    if not isinstance(messages, list) or not messages:
        raise _shape("messages must be a non-empty list of {role, content} objects", "messages")
    said = [_message(i, m) for i, m in enumerate(messages)]
    users = [text for role, text in said if role == "user"]
    if not users:
        raise _shape("messages holds no message with role 'user'", "messages", "missing")
    prompt = users[-1].strip()
    if not prompt:
        raise _shape("the last user message is empty", "messages")
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError:
        raise _shape("the last user message is not valid Unicode text", "messages") from None
    return prompt


def _message(i: int, message: Any) -> tuple[str, str]:
    where = f"messages[{i}]"
    if not isinstance(message, dict):
        raise _shape(f"{where} is a {type(message).__name__}, not a {{role, content}} object",
                     where)
    role = message.get("role")
    if not isinstance(role, str):
        raise _shape(f"{where}.role must be a string such as 'user'", f"{where}.role")
    return role, _content(message.get("content"), f"{where}.content")


def _content(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(_text_part(part, f"{where}[{j}]") for j, part in enumerate(value))
    raise _shape(f"{where} must be a string or a list of text parts [{TEXT_PART}]", where)


def _text_part(part: Any, where: str) -> str:
    if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"),
                                                                            str):
        return str(part["text"])
    kind = part.get("type") if isinstance(part, dict) else type(part).__name__
    raise Refusal(400, f"{where} is a {kind!r} part: only text parts {TEXT_PART} are accepted",
                  param=where, code="unsupported_content")


def _check_length(prompt: str, cohort: CohortView, limits: Limits) -> None:
    n = len(prompt)
    if n > limits.max_prompt_chars:
        raise Refusal(400, f"the prompt has {n} characters; this front takes at most "
                      f"{limits.max_prompt_chars}", param="messages",
                      code="string_above_max_length")
    if n > cohort.context_chars:
        raise Refusal(400, f"the prompt has {n} characters but the cohort's models read at most "
                      f"{cohort.context_chars} (one token per character, leaving room for a "
                      f"{ANSWER_TOKENS}-token answer)", param="messages",
                      code="context_length_exceeded")


def body_too_large(limit: int) -> Refusal:
    return Refusal(413, f"the request body exceeds {limit} bytes; send a shorter prompt",
                   code="request_too_large")


def method_not_allowed(allowed: str) -> Refusal:
    return Refusal(405, f"use {allowed} on this path", code="method_not_allowed")


def not_found(path: str) -> Refusal:
    return Refusal(404, f"no route {path}; the front serves POST /v1/chat/completions and "
                   "GET /v1/models", code="not_found")


def timed_out(timeout: float) -> Refusal:
    return Refusal(504, f"the cohort gave no answer within {timeout:g}s; try again",
                   code="timeout", kind="timeout_error")


def server_error() -> Refusal:
    return Refusal(500, "the front failed on this request", code="internal_error",
                   kind="server_error")


@dataclass(frozen=True)
class Cycles:
    """How the front numbers its queries into cycles of `size`, and when it announces one.

    The grader closes a cycle once the number of queries its `CycleOpened` announces are
    settled, and later cycles are routed only after that. So the front announces a cycle once
    every query of it has been published (successfully or not), with the number that were:
    no cycle waits for a query that is not in the log. Its first cycle follows every cycle
    already in the log (`resume`)."""

    size: int
    first: int = 0
    allotted: int = 0
    finished: MappingProxyType[int, tuple[int, int]] = field(
        default_factory=lambda: MappingProxyType({}))  # cycle -> (publishes ended, published)

    def allot(self, instance: str) -> tuple[Cycles, str, int]:
        """The next query's id and cycle."""
        n = self.allotted + 1
        return replace(self, allotted=n), f"http-{instance}-{n:06d}", self.current(n)

    def current(self, n: int) -> int:
        return self.first + (n - 1) // self.size

    def finish(self, cycle: int, published: bool) -> tuple[Cycles, CycleOpened | None]:
        """One publish of `cycle` has ended; the cycle's announcement once all have."""
        ended, ok = self.finished.get(cycle, (0, 0))
        ended, ok = ended + 1, ok + published
        if ended < self.size:
            return self._with(cycle, (ended, ok)), None
        return self._with(cycle, None), CycleOpened(cycle=cycle, queries=ok, mode="free")

    def seal(self) -> tuple[Cycles, CycleOpened | None]:
        """Announce a partly filled cycle with what it holds (at shutdown, publishes ended)."""
        if self.allotted % self.size == 0:
            return self, None
        cycle = self.current(self.allotted)
        _, ok = self.finished.get(cycle, (0, 0))
        whole = (self.allotted // self.size + 1) * self.size
        return (replace(self._with(cycle, None), allotted=whole),
                CycleOpened(cycle=cycle, queries=ok, mode="free"))

    def _with(self, cycle: int, counts: tuple[int, int] | None) -> Cycles:
        finished = {c: v for c, v in self.finished.items() if c != cycle}
        if counts is not None:
            finished[cycle] = counts
        return replace(self, finished=MappingProxyType(finished))


def resume(size: int, logged: Iterable[tuple[str, int]]) -> tuple[Cycles, list[CycleOpened]]:
    """Where a (re)started front goes on, from the (type, cycle) of every CycleOpened and
    QueryReceived in the log: after the last cycle, once every earlier cycle is announced
    (one that a stopped front left open is announced with the queries it holds)."""
    announced: set[int] = set()
    queries: Counter[int] = Counter()
    for kind, cycle in logged:
        if kind == CycleOpened.TYPE:
            announced.add(cycle)
        else:
            queries[cycle] += 1
    first = max(announced | set(queries), default=-1) + 1
    missing = [CycleOpened(cycle=c, queries=queries[c], mode="free")
               for c in range(first) if c not in announced]
    return Cycles(size, first), missing


def user_query(query_id: str, cycle: int, text: str, embedding: str, seed: int,
               shadow_share: float, router_cost: float = 0.0) -> QueryReceived:
    """A user's query: no task reference, shadow-sampled exactly as benchmark queries are,
    with the router's cost of embedding it."""
    return QueryReceived(query_id=query_id, cycle=cycle, text=text, embedding=embedding,
                         task=None, shadow=is_shadow(seed, query_id, shadow_share),
                         router_cost=router_cost)


def _content_of(request: ChatRequest, answer: ResponseGenerated) -> tuple[str, str]:
    """The answer as served and its finish reason (cut to `max_tokens` characters)."""
    text = answer.answer
    if request.max_tokens is not None and len(text) > request.max_tokens:
        return text[:request.max_tokens], "length"
    return text, "stop"


def _extension(reply: Reply) -> dict[str, Any]:
    """What only this system knows: which member answered, at what cost, how sure."""
    a, v, q = reply.answer, reply.verdict, reply.query
    return {"query_id": q.query_id, "cycle": q.cycle, "shadow": q.shadow,
            "model_id": a.model_id, "tier": a.tier, "cost_norm": a.cost_norm,
            "p_success": v.p_success, "escalated": v.tier > 0}


def _usage(answer: ResponseGenerated) -> dict[str, int]:
    return {"prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.answer_tokens,
            "total_tokens": answer.prompt_tokens + answer.answer_tokens}


def completion(request: ChatRequest, reply: Reply, created: int) -> dict[str, Any]:
    """OpenAI's `chat.completion` body; `model` is the member that answered."""
    content, finish = _content_of(request, reply.answer)
    return {
        "id": f"chatcmpl-{reply.query.query_id}", "object": "chat.completion",
        "created": created, "model": reply.answer.model_id,
        "choices": [{"index": 0, "finish_reason": finish, "logprobs": None,
                     "message": {"role": "assistant", "content": content}}],
        "usage": _usage(reply.answer), "sleepwake": _extension(reply),
    }


def stream_events(request: ChatRequest, reply: Reply, created: int) -> list[bytes]:
    """OpenAI's `chat.completion.chunk` stream as SSE: role, content, finish, `[DONE]`."""
    content, finish = _content_of(request, reply.answer)
    head = {"id": f"chatcmpl-{reply.query.query_id}", "object": "chat.completion.chunk",
            "created": created, "model": reply.answer.model_id}
    deltas: list[tuple[dict[str, str], str | None]] = [
        ({"role": "assistant", "content": ""}, None), ({"content": content}, None), ({}, finish)]
    chunks = [{**head, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                    "finish_reason": reason}]} for delta, reason in deltas]
    chunks[-1] |= {"usage": _usage(reply.answer), "sleepwake": _extension(reply)}
    return [f"data: {json.dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"]


def reply_headers(reply: Reply) -> dict[str, str]:
    a = reply.answer
    return {"x-sleepwake-model": a.model_id, "x-sleepwake-tier": str(a.tier),
            "x-sleepwake-cost": f"{a.cost_norm:.6f}", "x-sleepwake-query": reply.query.query_id}


def model_list(cohort: CohortView, created: int) -> dict[str, Any]:
    """OpenAI's model list: the virtual model that routes, then every member."""
    ids = (VIRTUAL_MODEL, *cohort.models)
    return {"object": "list", "data": [{"id": i, "object": "model", "created": created,
                                        "owned_by": "sleepwake"} for i in ids]}
