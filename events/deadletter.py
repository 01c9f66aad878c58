"""The record written to a dead-letter topic: why, what, and where it came from."""

from __future__ import annotations

import base64
import hashlib

from pydantic import BaseModel, ConfigDict, Field

from events.codec import BadEvent, Reason

#: The most original bytes a dead letter keeps. A larger original is cut to this size and
#: kept with its full size and sha256, so the dead letter itself always fits a Kafka record.
MAX_ORIGINAL = 64 * 1024


class DeadLetter(BaseModel):
    """A message that could not become an event, kept (up to MAX_ORIGINAL bytes) so that
    nothing is lost silently: its size and hash identify the whole original."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: Reason = Field(description="Which kind of bad input.", examples=["too_deep"])
    detail: str = Field(description="What exactly is wrong, and so what to fix.",
                        max_length=2000)
    consumer: str = Field(description="The agent (instance) that rejected it.",
                          examples=["projector"])
    topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    key: str | None = None
    original_b64: str = Field(description="The original bytes (at most MAX_ORIGINAL), base64.")
    original_size: int = Field(default=0, ge=0, description="Size of the whole original.")
    original_sha256: str = Field(default="", description="sha256 of the whole original.")

    @classmethod
    def of(
        cls, err: BadEvent, raw: bytes | None, *, consumer: str, topic: str, partition: int,
        offset: int, key: str | None,
    ) -> DeadLetter:
        raw = raw or b""
        return cls(
            reason=err.reason, detail=err.detail[:2000], consumer=consumer, topic=topic,
            partition=partition, offset=offset, key=key[:256] if key else key,
            original_b64=base64.b64encode(raw[:MAX_ORIGINAL]).decode(),
            original_size=len(raw), original_sha256=hashlib.sha256(raw).hexdigest(),
        )

    @property
    def truncated(self) -> bool:
        return self.original_size > MAX_ORIGINAL

    def original(self) -> bytes:
        """The kept bytes: the whole original unless `truncated`."""
        return base64.b64decode(self.original_b64)

    def digest(self) -> str:
        """sha256 of the whole original (older dead letters: of the kept bytes)."""
        return self.original_sha256 or hashlib.sha256(self.original()).hexdigest()
