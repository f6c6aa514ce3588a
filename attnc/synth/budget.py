"""Hard caps on what one synthesis run may spend: requests, tokens, seconds."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Budget:
    """Counts spend and says when a cap is reached.

    Every HTTP attempt is a request (retries included); cache hits are free.
    Tokens are prompt + completion tokens, charged after each reply.
    """

    max_requests: int
    max_tokens: int
    max_seconds: float
    clock: Callable[[], float] = time.monotonic
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_replies: int = 0
    _start: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self._start = self.clock()

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def elapsed(self) -> float:
        return self.clock() - self._start

    def seconds_left(self) -> float:
        return max(0.0, self.max_seconds - self.elapsed())

    def exhausted(self) -> str | None:
        """Which cap is reached ("max_requests", "max_tokens", "max_seconds"), or None."""
        if self.requests >= self.max_requests:
            return "max_requests"
        if self.tokens >= self.max_tokens:
            return "max_tokens"
        if self.elapsed() >= self.max_seconds:
            return "max_seconds"
        return None

    def charge_request(self) -> None:
        self.requests += 1

    def charge_tokens(self, prompt: int, completion: int) -> None:
        self.prompt_tokens += prompt
        self.completion_tokens += completion

    def to_json(self) -> dict:
        return {
            "requests": self.requests,
            "cached_replies": self.cached_replies,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "seconds": round(self.elapsed(), 3),
            "caps": {"max_requests": self.max_requests, "max_tokens": self.max_tokens, "max_seconds": self.max_seconds},
        }
