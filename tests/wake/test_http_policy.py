"""The HTTP front's pure rules: request parsing, the context rule, cycles and their resumption."""

from __future__ import annotations

import inspect
import json
from typing import Any

from agents.gateway.http_policy import (
    ANSWER_TOKENS,
    ChatRequest,
    CohortView,
    Cycles,
    Limits,
    Refusal,
    parse_chat,
    prompt_budget,
    resume,
)
from events.serving import CycleOpened

COHORT = CohortView(("l0-a", "top"), context_chars=47)


def parse(doc: Any) -> ChatRequest | Refusal:
    return parse_chat(json.dumps(doc).encode(), COHORT, Limits())


def test_the_context_rule_leaves_room_for_the_template_and_the_answer() -> None:
    from modelcore.backend import ModelBackend

    generate = inspect.signature(ModelBackend.generate).parameters["max_new_tokens"]
    assert generate.default == ANSWER_TOKENS  # the budget follows what workers generate
    assert prompt_budget(64, "{query}=") == 64 - 1 - ANSWER_TOKENS
    at, over = ({"messages": [{"role": "user", "content": "1" * n}]} for n in (47, 48))
    assert isinstance(parse(at), ChatRequest)
    refused = parse(over)
    assert isinstance(refused, Refusal) and refused.code == "context_length_exceeded"


def test_the_last_user_message_is_the_prompt_and_options_are_read() -> None:
    request = parse({"model": "top", "stream": True, "max_tokens": 9, "max_completion_tokens": 4,
                     "temperature": 0.2, "messages": [
                         {"role": "system", "content": "be brief"},
                         {"role": "user", "content": "first"},
                         {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
                         {"role": "user", "content": [{"type": "text", "text": " gcd: "},
                                                      {"type": "text", "text": "12 18 "}]}]})
    assert request == ChatRequest(prompt="gcd: 12 18", model="top", stream=True, max_tokens=4)
    assert parse({"messages": [{"role": "user", "content": "hi"}]}) == ChatRequest(
        prompt="hi", model="sleepwake", stream=False, max_tokens=None)


def test_cycles_are_announced_once_all_their_publishes_ended() -> None:
    cycles = Cycles(size=2, first=5)
    cycles, first, c1 = cycles.allot("x")
    cycles, _, c2 = cycles.allot("x")
    cycles, _, c3 = cycles.allot("x")
    assert (first, c1, c2, c3) == ("http-x-000001", 5, 5, 6)
    cycles, none = cycles.finish(5, published=True)
    assert none is None
    cycles, opened = cycles.finish(5, published=False)  # a failed publish is not counted
    assert opened == CycleOpened(cycle=5, queries=1, mode="free")
    cycles, none = cycles.finish(6, published=True)
    assert none is None
    cycles, sealed = cycles.seal()  # at shutdown cycle 6 holds one query of two
    assert sealed == CycleOpened(cycle=6, queries=1, mode="free")
    assert cycles.allot("x")[2] == 7 and cycles.seal()[1] is None


def test_resume_goes_on_after_the_log_and_announces_what_was_left_open() -> None:
    assert resume(4, []) == (Cycles(4, 0), [])
    logged = [("CycleOpened", 0), ("QueryReceived", 0), ("QueryReceived", 2),
              ("QueryReceived", 2), ("CycleOpened", 3)]
    cycles, missing = resume(4, logged)
    assert cycles.first == 4
    assert missing == [CycleOpened(cycle=1, queries=0, mode="free"),
                       CycleOpened(cycle=2, queries=2, mode="free")]
