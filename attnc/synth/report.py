"""What an LLM synthesis run did, per head and in total (JSON-serialisable)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

#: Why a candidate (or a request for candidates) was not kept.
REJECTION_REASONS = ("no_code", "syntax", "validation", "runtime", "not_better", "too_large", "http_error", "timeout")
#: Rejection messages kept per head, so reports stay small.
MAX_MESSAGES = 20


def _zero_counts() -> dict[str, int]:
    return {reason: 0 for reason in REJECTION_REASONS}


@dataclass
class HeadReport:
    """One head's run.

    `candidates` counts every extracted source, every reply that yielded none,
    and every failed request; so candidates == accepted + sum(rejected).
    `validation_rules` counts the DSL rules behind `syntax`/`validation` rejections.
    """

    head: str
    best_before: float
    best_after: float
    best_name: str | None = None
    requests: int = 0
    cached_replies: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    candidates: int = 0
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=_zero_counts)
    validation_rules: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    def reject(self, reason: str, message: str = "", rules: tuple[str, ...] = ()) -> None:
        if reason not in self.rejected:
            raise ValueError(f"unknown rejection reason {reason!r}; known: {', '.join(REJECTION_REASONS)}")
        self.candidates += 1
        self.rejected[reason] += 1
        for rule in rules:
            self.validation_rules[rule] = self.validation_rules.get(rule, 0) + 1
        if message and len(self.messages) < MAX_MESSAGES:
            self.messages.append(f"{reason}: {message[:300]}")

    def accept(self) -> None:
        self.candidates += 1
        self.accepted += 1


@dataclass
class SynthReport:
    """The whole run.

    Attributes:
        model, base_url: the endpoint asked.
        started: UTC ISO time the run started.
        rounds: rounds asked for.
        heads: per-head reports.
        spend: requests (HTTP attempts), cached replies, prompt/completion tokens, seconds, caps.
        stopped_by: the cap that ended the run early ("max_requests", "max_tokens",
            "max_seconds"), or None when it ran to the end.
        token_counter: how tokens were counted where the server sent no usage.
    """

    model: str
    base_url: str | None
    started: str
    rounds: int
    heads: list[HeadReport] = field(default_factory=list)
    spend: dict = field(default_factory=dict)
    stopped_by: str | None = None
    token_counter: str = ""

    def totals(self) -> dict:
        rejected = _zero_counts()
        for head in self.heads:
            for reason, count in head.rejected.items():
                rejected[reason] += count
        return {
            "candidates": sum(h.candidates for h in self.heads),
            "accepted": sum(h.accepted for h in self.heads),
            "rejected": rejected,
            "files": [f for h in self.heads for f in h.files],
        }

    def to_json(self) -> dict:
        data = asdict(self)
        data["totals"] = self.totals()
        return data
