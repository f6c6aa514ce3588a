"""Generic template programs from parameter grids (no head-specific fitting).

Each template is a weighted mixture of row-normalised positional primitives
(attention sink, self, previous tokens, normalised recency decays, uniform
causal), so its weights read as shares of attention. They depend on
positions only, so one [n, n] matrix serves every window and the whole grid
is scored against all heads cheaply with the fast scorer. Only templates
that are the best template for at least one head are kept: a cheap baseline
and fallback for heads whose fitted program is worse.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

from attnc.output_rule import apply_output_rule
from attnc.study.scoring import score_window_batch


@dataclass(frozen=True)
class Primitive:
    """A row-normalised positional pattern: DSL expression and NumPy matrix."""

    name: str
    dsl: str

    def matrix(self, n: int) -> np.ndarray:
        q = np.arange(n)[:, None].astype(np.float64)
        k = np.arange(n)[None, :].astype(np.float64)
        d = np.maximum(q - k, 0)
        if self.name == "sink":
            m = (k == 0) * 1.0
        elif self.name == "self":
            m = (k == q) * 1.0
        elif self.name.startswith("prev"):
            m = (k == q - int(self.name[4:])) * 1.0
        elif self.name == "uniform":
            m = 1.0 / (q + 1) + 0 * k
        elif self.name.startswith("decay"):
            r = int(self.name[5:]) / 100
            m = r ** d * (1 - r) / (1 - r ** (q + 1))
        else:
            raise ValueError(f"unknown primitive {self.name!r}")
        return np.tril(m)


def _decay(rate: float) -> Primitive:
    r = f"{rate:.2f}"
    return Primitive(f"decay{int(round(rate * 100)):02d}", f"({r} ** max(q - k, 0) * {1 - rate:.2f} / (1 - {r} ** (q + 1)))")


PRIMITIVES = {p.name: p for p in (
    Primitive("sink", "(k == 0)"), Primitive("self", "(k == q)"), Primitive("prev1", "(k == q - 1)"),
    Primitive("prev2", "(k == q - 2)"), Primitive("uniform", "(1.0 / (q + 1))"),
    _decay(0.5), _decay(0.8), _decay(0.95),
)}


@dataclass(frozen=True)
class Template:
    """A mixture: (weight, primitive name) pairs, weights summing to 1."""

    terms: tuple[tuple[float, str], ...]

    @property
    def name(self) -> str:
        return "tpl_" + "_".join(f"{p}{int(round(w * 100)):02d}" for w, p in self.terms)

    def matrix(self, n: int) -> np.ndarray:
        return sum(w * PRIMITIVES[p].matrix(n) for w, p in self.terms)

    def dsl_terms(self) -> tuple[tuple[float, str], ...]:
        return tuple((w, PRIMITIVES[p].dsl) for w, p in self.terms)


def template_grid() -> list[Template]:
    """Sink share x one or two other primitives: about 150 templates."""
    others = [p for p in PRIMITIVES if p != "sink"]
    out: list[Template] = []
    for name in others:
        for sink in (0.0, 0.25, 0.5, 0.75, 0.9):
            terms = ((sink, "sink"), (1 - sink, name)) if sink else ((1.0, name),)
            out.append(Template(terms))
    for a, b in ((x, y) for i, x in enumerate(others) for y in others[i + 1:]):
        for sink, share in product((0.0, 0.5, 0.8), (0.3, 0.6)):
            rest = 1 - sink
            terms = tuple(t for t in ((sink, "sink"), (rest * share, a), (rest * (1 - share), b)) if t[0] > 0)
            out.append(Template(tuple((round(w, 2), p) for w, p in terms)))
    unique = {t.name: t for t in out}
    return list(unique.values())


def score_templates(templates: list[Template], attn: np.ndarray) -> np.ndarray:
    """Mean IoU [T, H] of templates on windows attn [W, H, n, n] (fast scorer)."""
    n_windows, _, n, _ = attn.shape
    mats = apply_output_rule(np.stack([t.matrix(n) for t in templates]))
    programs = {t.name: np.broadcast_to(mats[i], (n_windows, n, n)) for i, t in enumerate(templates)}
    return score_window_batch(np.asarray(attn, dtype=np.float32), programs) / n_windows
