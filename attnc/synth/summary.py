"""Compact, model-agnostic text descriptions of an attention head, for LLM prompts.

A summary shows what the head does in terms a program can express: sample
windows with token boundaries, the top keys of a few queries, aggregate
statistics (mass on the first token, on itself, by relative offset, on
punctuation, on earlier copies of the same token, on the token after an
earlier copy, entropy), and how well the current best programs fit. It is cut
down (fewer windows, queries, shown tokens) until it fits a token budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from attnc.synth.tokens import token_counter
from attnc.window import Vocab, window_features

#: Relative offsets reported in the aggregate statistics (key = query - d).
OFFSETS = tuple(range(1, 9))
#: Detail levels tried in order: (windows shown, queries per window, tokens shown per window).
DETAIL_LEVELS = ((3, 4, 64), (2, 4, 48), (2, 3, 32), (1, 3, 32), (1, 2, 24), (1, 1, 16), (0, 0, 0))


@dataclass(frozen=True)
class HeadSummary:
    """A head described in text.

    Attributes:
        head: "layer.head".
        text: the description, ready to paste into a prompt.
        n_tokens: its length in LLM tokens (see `exact`).
        exact: True when counted with a real BPE table, False for the
            conservative estimate (see `attnc.synth.tokens`).
        detail: the detail level used, (windows, queries, tokens shown).
    """

    head: str
    text: str
    n_tokens: int
    exact: bool
    detail: tuple[int, int, int]


@dataclass(frozen=True)
class HeadStatistics:
    """Mean attention mass per query, over all given windows."""

    first: float
    self_: float
    by_offset: dict[int, float]
    punctuation: float
    repeat: float
    repeat_share: float
    induction: float
    induction_share: float
    entropy: float
    uniform_entropy: float


def _vocab_for(tokens: Sequence[str]) -> tuple[Vocab, np.ndarray]:
    interned: dict[str, int] = {}
    ids = np.array([interned.setdefault(t, len(interned)) for t in tokens], dtype=np.int64)
    return Vocab(tokens=tuple(interned)), ids


def _check_window(tokens: Sequence[str], attn: np.ndarray, index: int) -> np.ndarray:
    attn = np.asarray(attn, dtype=np.float64)
    n = len(tokens)
    if attn.shape != (n, n):
        raise ValueError(f"window {index}: attention has shape {attn.shape}, expected ({n}, {n}) for {n} tokens")
    if not np.all(np.isfinite(attn)):
        raise ValueError(f"window {index}: attention has NaN or inf values")
    return attn


def head_statistics(windows: Sequence[tuple[Sequence[str], np.ndarray]]) -> HeadStatistics:
    """Aggregate statistics of a head over windows of (tokens, attention [n, n]).

    Rows are used as given (they are expected to sum to 1). Repeat and induction
    mass are averaged over the queries that have an earlier copy of their token;
    `*_share` is the fraction of queries that do.
    """
    sums = {"first": 0.0, "self": 0.0, "punct": 0.0, "entropy": 0.0, "uniform": 0.0}
    offsets = {d: [0.0, 0] for d in OFFSETS}
    repeat_mass = induction_mass = 0.0
    repeat_rows = induction_rows = rows = 0
    for index, (tokens, attn) in enumerate(windows):
        attn = _check_window(tokens, attn, index)
        n = len(tokens)
        if n == 0:
            continue
        vocab, ids = _vocab_for(tokens)
        feats = {k: v[0] for k, v in window_features(ids[None, :], vocab).items()}
        q = np.arange(n)
        rows += n
        sums["first"] += attn[:, 0].sum()
        sums["self"] += attn[q, q].sum()
        sums["punct"] += attn[:, feats["is_punct"]].sum()
        safe = np.clip(attn, 1e-12, None)
        sums["entropy"] += float(-(attn * np.log(safe)).sum())
        sums["uniform"] += float(np.log(q + 1).sum())
        for d in OFFSETS:
            if n > d:
                offsets[d][0] += attn[q[d:], q[d:] - d].sum()
                offsets[d][1] += n - d
        same = ids[None, :] == ids[:, None]
        earlier = q[None, :] < q[:, None]
        repeat = same & earlier
        has_repeat = repeat.any(axis=1)
        repeat_rows += int(has_repeat.sum())
        repeat_mass += float((attn * repeat).sum())
        after = np.zeros_like(repeat)
        after[:, 1:] = same[:, :-1] & earlier[:, 1:]
        has_after = after.any(axis=1)
        induction_rows += int(has_after.sum())
        induction_mass += float((attn * after).sum())
    rows = max(rows, 1)
    return HeadStatistics(
        first=sums["first"] / rows,
        self_=sums["self"] / rows,
        by_offset={d: (m / c if c else 0.0) for d, (m, c) in offsets.items()},
        punctuation=sums["punct"] / rows,
        repeat=repeat_mass / max(repeat_rows, 1),
        repeat_share=repeat_rows / rows,
        induction=induction_mass / max(induction_rows, 1),
        induction_share=induction_rows / rows,
        entropy=sums["entropy"] / rows,
        uniform_entropy=sums["uniform"] / rows,
    )


def _show(token: str) -> str:
    return token.replace("\n", "\\n").replace("|", "\\|")


def _format_statistics(stats: HeadStatistics) -> list[str]:
    offsets = " ".join(f"-{d} {stats.by_offset[d]:.2f}" for d in OFFSETS)
    return [
        "Mean attention mass per query, over all windows:",
        f"  first token {stats.first:.2f} | self {stats.self_:.2f} | punctuation {stats.punctuation:.2f}",
        f"  by offset (key = query - d): {offsets}",
        f"  earlier copies of the query's token {stats.repeat:.2f} (on the {stats.repeat_share:.0%} of queries that have one)",
        f"  token right after an earlier copy (induction) {stats.induction:.2f} (on {stats.induction_share:.0%} of queries)",
        f"  row entropy {stats.entropy:.2f} nats (uniform causal attention: {stats.uniform_entropy:.2f})",
    ]


def _query_positions(tokens: Sequence[str], count: int) -> list[int]:
    """Deterministic queries: evenly spread ones, half of them with an earlier repeat when possible."""
    n = len(tokens)
    if count <= 0 or n < 2:
        return []
    seen: set[str] = set()
    repeats = []
    for p, t in enumerate(tokens):
        if t in seen:
            repeats.append(p)
        seen.add(t)
    chosen = [int(p) for p in np.linspace(min(2, n - 1), n - 1, num=count - count // 2).round()]
    if repeats:
        chosen += [repeats[int(i)] for i in np.linspace(0, len(repeats) - 1, num=count // 2).round()]
    else:
        chosen += [int(p) for p in np.linspace(1, n - 1, num=count // 2 + 2).round()[1:-1]]
    return sorted(set(chosen))[:count]


def _format_window(number: int, tokens: Sequence[str], attn: np.ndarray, queries: int, shown: int) -> list[str]:
    n = len(tokens)
    parts = []
    for p, t in enumerate(tokens[:shown]):
        parts.append(f"[{p}]{_show(t)}" if p % 10 == 0 else _show(t))
    more = f" …(+{n - shown} tokens)" if n > shown else ""
    lines = [f"Window {number} ({n} tokens): " + "|".join(parts) + more]
    for q in _query_positions(tokens, queries):
        row = attn[q]
        top = [k for k in np.argsort(-row, kind="stable")[:3] if row[k] >= 0.02]
        keys = ", ".join(f"{k} '{_show(tokens[k])}' {row[k]:.2f}" for k in top)
        lines.append(f"  q={q} '{_show(tokens[q])}' → {keys}")
    return lines


def summarize_head(
    head: str,
    windows: Sequence[tuple[Sequence[str], np.ndarray]],
    *,
    current_best: Sequence[tuple[str, float]] = (),
    token_budget: int = 1500,
    encoding: str = "cl100k_base",
) -> HeadSummary:
    """Describe a head's attention for an LLM, within `token_budget` tokens.

    Args:
        head: "layer.head".
        windows: (token strings, attention [n, n]) per window; rows sum to 1.
        current_best: (program name, IoU) of the best programs so far.
        token_budget: the most LLM tokens the text may take.
        encoding: tiktoken encoding to count with (offline; see attnc.synth.tokens).

    Returns:
        The summary at the most detailed level that fits.

    Raises:
        ValueError: an attention matrix whose shape does not match its tokens,
            or a budget too small for even the aggregate statistics.
    """
    counter = token_counter(encoding)
    stats = head_statistics(windows)
    header = [
        f"Head {head}: {len(windows)} windows. Tokens are shown as the tokenizer spells them "
        "(Ġ = leading space, Ċ = newline); [i] marks position i.",
        *_format_statistics(stats),
    ]
    if current_best:
        ranked = sorted(current_best, key=lambda item: -item[1])[:5]
        header.append("Current best programs (IoU): " + ", ".join(f"{name} {iou:.3f}" for name, iou in ranked))
    else:
        header.append("Current best programs: none yet.")
    for level in DETAIL_LEVELS:
        n_windows, n_queries, shown = level
        lines = list(header)
        for number, (tokens, attn) in enumerate(windows[:n_windows], start=1):
            lines += _format_window(number, list(tokens), np.asarray(attn, dtype=np.float64), n_queries, shown)
        text = "\n".join(lines)
        n_tokens = counter.count(text)
        if n_tokens <= token_budget:
            return HeadSummary(head=head, text=text, n_tokens=n_tokens, exact=counter.exact, detail=level)
    raise ValueError(
        f"head {head}: even the aggregate statistics take {n_tokens} tokens, over the budget of "
        f"{token_budget}; raise token_budget (at least {n_tokens})"
    )
