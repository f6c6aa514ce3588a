"""Settings of an LLM synthesis run, and how they are completed from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

#: Key sent to servers that need none (local OpenAI-compatible servers ignore it).
PLACEHOLDER_API_KEY = "attnc-no-key"


class SynthConfigError(ValueError):
    """The run cannot start: a setting is missing or out of range (the message says which flag/env var)."""


@dataclass(frozen=True)
class LLMSynthConfig:
    """What to ask, whom, how often, and what one run may spend.

    Endpoint:
        base_url: OpenAI-compatible API root (`--base-url`, env `OPENAI_BASE_URL`),
            e.g. "http://127.0.0.1:8000/v1". Left empty with `OPENAI_API_KEY`
            set, the client's default (api.openai.com) is used.
        model: model name (`--llm-model`, env `ATTNC_LLM_MODEL`).
        api_key: env `OPENAI_API_KEY`; a placeholder for local servers.
    Sampling:
        n_candidates: programs asked for per head and round.
        use_n: ask for all of them in one request with `n=`; servers that
            return fewer choices get follow-up requests.
        rounds: 1, or more for feedback rounds (best source, its IoU and the
            rejections of the previous round go into the next prompt).
        temperature, max_completion_tokens: sent with each request.
        summary_token_budget: tokens the head summary may take in a prompt.
    Acceptance and output:
        margin: a candidate is kept when its fit IoU > current best + margin.
        out_dir: where accepted programs are written (`<name>.py`).
        cache_dir: replies cached by request hash; None disables the cache.
    Transport:
        request_timeout_s: per HTTP request.
        max_attempts: tries per request (429, 5xx, timeouts, connection errors).
        backoff_base_s, backoff_cap_s: exponential backoff with jitter; a
            server's Retry-After is honoured up to the cap.
        concurrency: most requests in flight at once (`--concurrency`); 1 asks
            one at a time. Different heads of a round are asked in parallel; the
            results do not depend on it (unless a cap ends the run), and the
            caps below still bound the run.
    Caps (the run stops cleanly when one is hit; the report says which):
        max_requests: HTTP requests (every attempt counts; cache hits do not).
        max_tokens: prompt + completion tokens (from `usage`, else counted).
        max_seconds: wall time of the run.
        max_reply_bytes: replies (and code blocks) larger than this are rejected
            as `too_large` before any parsing.
    """

    base_url: str | None = None
    model: str | None = None
    api_key: str | None = None
    n_candidates: int = 4
    use_n: bool = True
    rounds: int = 1
    temperature: float = 0.8
    max_completion_tokens: int = 1024
    summary_token_budget: int = 1500
    margin: float = 0.0
    out_dir: Path = Path("programs")
    cache_dir: Path | None = Path(".attnc-cache/llm")
    request_timeout_s: float = 60.0
    max_attempts: int = 4
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 30.0
    concurrency: int = 1
    max_requests: int = 200
    max_tokens: int = 500_000
    max_seconds: float = 3600.0
    max_reply_bytes: int = 64 * 1024

    def resolved(self) -> "LLMSynthConfig":
        """This config with endpoint settings filled from the environment, checked.

        Raises:
            SynthConfigError: no endpoint or model, or a setting out of range.
        """
        base_url = self.base_url or os.environ.get("OPENAI_BASE_URL") or None
        api_key = self.api_key or os.environ.get("OPENAI_API_KEY") or None
        model = self.model or os.environ.get("ATTNC_LLM_MODEL") or None
        if base_url is None and api_key is None:
            raise SynthConfigError(
                "no LLM endpoint configured: pass --base-url (or set OPENAI_BASE_URL) for an "
                "OpenAI-compatible server, or set OPENAI_API_KEY to use the OpenAI API"
            )
        if model is None:
            raise SynthConfigError("no LLM model configured: pass --llm-model (or set ATTNC_LLM_MODEL)")
        positive = {
            "n_candidates": self.n_candidates,
            "rounds": self.rounds,
            "max_attempts": self.max_attempts,
            "max_requests": self.max_requests,
            "max_tokens": self.max_tokens,
            "max_seconds": self.max_seconds,
            "max_reply_bytes": self.max_reply_bytes,
            "request_timeout_s": self.request_timeout_s,
            "max_completion_tokens": self.max_completion_tokens,
        }
        for name, value in positive.items():
            if not value > 0:
                raise SynthConfigError(f"{name} must be > 0, got {value!r}")
        if isinstance(self.concurrency, bool) or not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise SynthConfigError(f"concurrency must be an integer >= 1, got {self.concurrency!r}")
        if self.backoff_base_s < 0 or self.backoff_cap_s < 0:
            raise SynthConfigError("backoff_base_s and backoff_cap_s must be >= 0")
        return replace(
            self,
            base_url=base_url,
            api_key=api_key or PLACEHOLDER_API_KEY,
            model=model,
            out_dir=Path(self.out_dir),
            cache_dir=Path(self.cache_dir) if self.cache_dir is not None else None,
        )
