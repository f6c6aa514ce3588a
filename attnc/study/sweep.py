"""The replacement sweep: perplexity (and QA accuracy) with a growing share of heads replaced.

Heads are replaced in a given order (`attnc.study.attribution`: by estimated
loss impact or by held-out IoU); fraction f replaces the first round(f * H)
heads, each by its program or fitted mixture, and evaluates the model on the
same held-out windows every time, so the points differ only in what is
replaced. Each evaluation installs surrogates, runs, and restores the stock
model, whatever happens.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from attnc.runtime.replacement import ReplacementMap

DEFAULT_FRACTIONS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)


def heads_for_fraction(fraction: float, n_heads: int) -> int:
    """How many heads fraction `fraction` of `n_heads` replaces (rounded to nearest)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction {fraction} is outside [0, 1]")
    return int(round(fraction * n_heads))


@dataclass
class SweepPoint:
    """Perplexity with `n_heads_replaced` heads replaced.

    Attributes:
        fraction: share of the model's heads replaced (decimal).
        ppl_increase_pct: 100 * (ppl / baseline ppl - 1); filled once the baseline is known.
        fallbacks: windows that used a stock head because its program failed.
    """

    fraction: float
    n_heads_replaced: int
    ppl: float
    tokens_evaluated: int
    n_windows: int
    seconds: float
    ppl_increase_pct: float | None = None
    fallbacks: int = 0
    heads: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def _installed(loaded, source, replacement: ReplacementMap, on_program_error: str):
    from attnc.runtime.surrogate import install_surrogates

    if len(replacement) == 0:
        return None
    return install_surrogates(loaded, source, replacement, on_program_error=on_program_error)


def replaced_perplexity(loaded, source, replacement: ReplacementMap, ids: np.ndarray, *, fraction: float,
                        batch_size: int = 8, on_program_error: str = "neural", progress: bool = True) -> SweepPoint:
    """Perplexity of the model with `replacement` installed (the stock model when it is empty)."""
    from attnc.runtime.heads import head_name
    from attnc.runtime.perplexity import perplexity

    handle = _installed(loaded, source, replacement, on_program_error)
    try:
        result = perplexity(loaded, ids, batch_size=batch_size, surrogate=handle, progress=progress)
    finally:
        if handle is not None:
            handle.remove()
    return SweepPoint(
        fraction=float(fraction),
        n_heads_replaced=len(replacement),
        ppl=result.ppl,
        tokens_evaluated=result.tokens_evaluated,
        n_windows=result.n_windows,
        seconds=result.seconds,
        fallbacks=sum(handle.fallbacks.values()) if handle is not None else 0,
        heads=[head_name(*key) for key in replacement],
    )


def replaced_qa(loaded, source, replacement: ReplacementMap, task: str, path, *, limit: int | None,
                batch_size: int = 16, on_program_error: str = "neural", progress: bool = True) -> dict:
    """QA accuracy with `replacement` installed: the QAResult's JSON plus the replaced-head count."""
    from attnc.runtime.qa import qa_accuracy

    handle = _installed(loaded, source, replacement, on_program_error)
    try:
        result = qa_accuracy(loaded, task, path, limit=limit, batch_size=batch_size, surrogate=handle,
                             progress=progress)
    finally:
        if handle is not None:
            handle.remove()
    return {**result.to_json(), "n_heads_replaced": len(replacement),
            "fallbacks": sum(handle.fallbacks.values()) if handle is not None else 0}
