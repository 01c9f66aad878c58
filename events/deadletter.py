"""The record written to a dead-letter topic: why, what, and where it came from."""

from __future__ import annotations

import base64

from pydantic import BaseModel, ConfigDict, Field

from events.codec import BadEvent, Reason


class DeadLetter(BaseModel):
    """A message that could not become an event, kept whole so that nothing is lost."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: Reason = Field(description="Which of the four kinds of bad input.")
    detail: str = Field(description="What exactly is wrong, and so what to fix.")
    consumer: str = Field(description="The agent that rejected it.", examples=["projector"])
    topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    key: str | None = None
    original_b64: str = Field(description="The original message bytes, base64.")

    @classmethod
    def of(
        cls, err: BadEvent, raw: bytes | None, *, consumer: str, topic: str, partition: int,
        offset: int, key: str | None,
    ) -> DeadLetter:
        return cls(
            reason=err.reason, detail=err.detail, consumer=consumer, topic=topic,
            partition=partition, offset=offset, key=key,
            original_b64=base64.b64encode(raw or b"").decode(),
        )

    def original(self) -> bytes:
        return base64.b64decode(self.original_b64)
