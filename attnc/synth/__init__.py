"""attnc.synth: programs for attention heads, written by an LLM and checked by the DSL.

Public API:
    summarize_head(head, windows, *, current_best, token_budget, encoding) -> HeadSummary
    run_llm_synthesis(config, heads, scorer, *, validate, client, sleep, clock, seed) -> SynthReport
    LLMSynthConfig, SynthConfigError, HeadTask, CandidateScore, Scorer (protocol),
    dsl_validate, ValidationFailure, SynthReport, HeadReport, token_counter
"""

from attnc.synth.config import LLMSynthConfig, SynthConfigError
from attnc.synth.llm import HeadTask, run_llm_synthesis
from attnc.synth.report import REJECTION_REASONS, HeadReport, SynthReport
from attnc.synth.scoring import CandidateScore, Scorer
from attnc.synth.summary import HeadSummary, summarize_head
from attnc.synth.tokens import token_counter
from attnc.synth.validation import ValidationFailure, dsl_validate

__all__ = [
    "REJECTION_REASONS", "CandidateScore", "HeadReport", "HeadSummary", "HeadTask", "LLMSynthConfig",
    "Scorer", "SynthConfigError", "SynthReport", "ValidationFailure", "dsl_validate", "run_llm_synthesis",
    "summarize_head", "token_counter",
]
