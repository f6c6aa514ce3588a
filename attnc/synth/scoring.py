"""How the synthesis loop learns how good a validated candidate is (injected scorer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from attnc.dsl.program import CheckedProgram


@dataclass(frozen=True)
class CandidateScore:
    """IoU of a program against one head: on fit windows (used to accept) and held-out ones (reported)."""

    iou_fit: float
    iou_heldout: float


class Scorer(Protocol):
    """Compiles/evaluates a validated program on a head's windows and scores it.

    Called only with programs that passed validation. May raise: the candidate
    is then rejected as `runtime` with the exception's message.
    """

    def score(self, program: CheckedProgram, head: str) -> CandidateScore: ...
