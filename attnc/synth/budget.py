"""Hard caps on what one synthesis run may spend: requests, tokens, seconds.

Requests may be in flight at the same time (`--concurrency`), so every HTTP
attempt first reserves its share under a lock and settles it with the real
usage when it ends: the request cap is never exceeded, and the token cap is
overshot by at most one request's reservation, as with one request at a time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

#: Longest (real) seconds a reservation waits before looking at the caps again.
_RECHECK_S = 1.0


@dataclass
class Spend:
    """What one part of a run spent (e.g. one head's requests): HTTP attempts and tokens."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class Budget:
    """Counts spend and says when a cap is reached; safe to share between threads.

    Every HTTP attempt is a request (retries included); cache hits are free.
    Tokens are prompt + completion tokens, charged when each reply settles.
    `reserved_tokens` and `in_flight` describe requests sent and not yet settled.
    """

    max_requests: int
    max_tokens: int
    max_seconds: float
    clock: Callable[[], float] = time.monotonic
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_replies: int = 0
    reserved_tokens: int = 0
    in_flight: int = 0
    _start: float = field(default=0.0, init=False)
    _lock: threading.Condition = field(default_factory=threading.Condition, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._start = self.clock()

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def elapsed(self) -> float:
        return self.clock() - self._start

    def seconds_left(self) -> float:
        return max(0.0, self.max_seconds - self.elapsed())

    def _cap(self, tokens: int) -> str | None:
        if self.requests >= self.max_requests:
            return "max_requests"
        if tokens >= self.max_tokens:
            return "max_tokens"
        if self.elapsed() >= self.max_seconds:
            return "max_seconds"
        return None

    def exhausted(self) -> str | None:
        """Which cap is reached ("max_requests", "max_tokens", "max_seconds"), or None.
        Only settled tokens count here; `reserve` also counts those in flight."""
        with self._lock:
            return self._cap(self.tokens)

    def reserve(self, tokens: int, spend: Spend | None = None) -> str | None:
        """Take one request, and `tokens` (what it may cost at most), before sending it.

        The request is allowed when fewer than `max_requests` were reserved, the
        tokens spent plus those reserved by requests in flight are under
        `max_tokens`, and time is left. When only reservations in flight stand
        in the way of the token cap, this waits for them to settle. With no
        request in flight this is exactly `exhausted()`.

        Returns:
            None when reserved (call `settle` once the request ends, whatever
            happened), else the cap that forbids the request.
        """
        with self._lock:
            while True:
                cap = self._cap(self.tokens + self.reserved_tokens)
                if cap != "max_tokens" or self.in_flight == 0:
                    break
                self._lock.wait(timeout=_RECHECK_S)
            if cap is not None:
                return cap
            self.requests += 1
            self.reserved_tokens += tokens
            self.in_flight += 1
            if spend is not None:
                spend.requests += 1
            return None

    def settle(self, reserved: int, prompt: int, completion: int, spend: Spend | None = None) -> None:
        """End a reservation of `reserved` tokens: charge what the request really cost (0, 0 if it failed)."""
        with self._lock:
            self.reserved_tokens -= reserved
            self.in_flight -= 1
            self.prompt_tokens += prompt
            self.completion_tokens += completion
            if spend is not None:
                spend.prompt_tokens += prompt
                spend.completion_tokens += completion
            self._lock.notify_all()

    def count_cached_reply(self) -> None:
        with self._lock:
            self.cached_replies += 1

    def to_json(self) -> dict:
        with self._lock:
            return {
                "requests": self.requests,
                "cached_replies": self.cached_replies,
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "seconds": round(self.elapsed(), 3),
                "caps": {"max_requests": self.max_requests, "max_tokens": self.max_tokens,
                         "max_seconds": self.max_seconds},
            }
