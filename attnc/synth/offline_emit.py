"""Render fitted head models as native DSL programs, validate and write them.

An emitted program is readable source: one `score` line per term, then
``return np.exp(score)`` (the output rule normalises each row, so this is a
softmax over keys). Where the compiler cannot yet vectorise ``np.exp`` /
``np.log``, the same function is emitted in an equivalent power form
(``E ** score * (distance + 1) ** a``) so that it compiles to a fast kernel.

Nothing is written unless `attnc.dsl.parse_program` accepts the source;
files are written atomically (temporary file + rename).
"""

from __future__ import annotations

import datetime as _dt
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from attnc.compiler import CompiledProgram, compile_program
from attnc.dsl import CheckedProgram, parse_program
from attnc.synth.offline_features import FEATURE_BY_NAME

E_LITERAL = "2.718281828459045"
#: Power-form replacements for features written with np.log in the exp form.
_LOG_FEATURE_BASES = {"log_distance": "(max(q - k, 0) + 1.0)", "log_key_position": "(k + 1.0)"}


@dataclass(frozen=True)
class ProgramTerms:
    """What an emitted program computes (rounded constants), independent of layout.

    Attributes:
        weights: (feature name, weight) pairs, in emission order.
        token_groups: (weight, token strings) key-bias sets.
        query_groups: (feature name, weight, token strings): `weight` more on the
            feature when the query token is in the set.
        mixture: for template programs, (weight, DSL expression) terms summed
            directly (no exp); empty for log-linear programs.
        profile: (distance back, weight) pairs of a relative-position profile,
            written as one literal table `{d: weight}.get(q - k, 0.0)`.
    """

    weights: tuple[tuple[str, float], ...] = ()
    token_groups: tuple[tuple[float, tuple[str, ...]], ...] = ()
    mixture: tuple[tuple[float, str], ...] = ()
    query_groups: tuple[tuple[str, float, tuple[str, ...]], ...] = ()
    profile: tuple[tuple[int, float], ...] = ()

    def signature(self) -> tuple:
        """Hashable identity used to share one program between heads."""
        return (self.weights, tuple((w, tuple(sorted(t))) for w, t in self.token_groups), self.mixture,
                tuple((f, w, tuple(sorted(t))) for f, w, t in self.query_groups), self.profile)


def _num(x: float) -> str:
    return repr(round(float(x), 2)).replace("-0.0", "0.0")


def _token_set(tokens: tuple[str, ...]) -> str:
    return "{" + ", ".join(repr(t) for t in sorted(tokens)) + "}"


def safe_token(token: str) -> bool:
    """Whether a token string can appear as a plain literal in emitted source."""
    return token.isprintable() and "\\" not in token and token != ""


def describe_terms(terms: ProgramTerms, limit: int = 4) -> str:
    """A short phrase naming the strongest terms, for docstrings."""
    if terms.mixture:
        return ", ".join(f"{w:g} x {expr}" for w, expr in terms.mixture[:limit])
    ranked = sorted(terms.weights, key=lambda kv: -abs(kv[1]))[:limit]
    parts = [f"{FEATURE_BY_NAME[name].meaning} ({value:+.2f})" for name, value in ranked]
    if terms.token_groups:
        strongest = max(terms.token_groups, key=lambda g: abs(g[0]))
        parts.append(f"key tokens like {', '.join(sorted(strongest[1])[:3])} ({strongest[0]:+.2f})")
    if terms.query_groups:
        feat, value, tokens = max(terms.query_groups, key=lambda g: abs(g[1]))
        parts.append(f"{FEATURE_BY_NAME[feat].meaning} after query tokens like {', '.join(sorted(tokens)[:3])} "
                     f"({value:+.2f})")
    if terms.profile:
        parts.append(describe_profile(terms.profile))
    return "; ".join(parts) if parts else "uniform over earlier tokens"


def _distance_words(d: int) -> str:
    return {0: "itself", 1: "the previous token"}.get(d, f"{d} tokens back")


def describe_profile(profile: tuple[tuple[int, float], ...]) -> str:
    """The profile in words: where it is strongest and weakest within its distances."""
    top = max(profile, key=lambda dv: dv[1])
    low = min(profile, key=lambda dv: dv[1])
    text = f"by distance, most to {_distance_words(top[0])} ({top[1]:+.2f})"
    if low[1] < 0:
        text += f", least to {_distance_words(low[0])} ({low[1]:+.2f})"
    return text


def render(name: str, terms: ProgramTerms, docstring: str, header: list[str], *, power_form: bool) -> str:
    """DSL source of one program (native elementwise form)."""
    lines = [f"# {line}" for line in header]
    lines.append("import numpy as np")
    lines.append("")
    lines.append("")
    lines.append(f"def {name}(q: int, k: int, w: Window) -> float:")
    docstring = "".join(c if c.isprintable() else " " for c in docstring).replace("\\", "/").replace('"', "'")
    lines.append(f'    """{docstring}"""')
    if terms.mixture:
        body = " + ".join(f"{_num(weight)} * {expr}" for weight, expr in terms.mixture)
        lines.append(f"    return {body or '1.0'}")
        return "\n".join(lines) + "\n"
    score = ["0.0"]
    factors = []
    for feat, weight in terms.weights:
        if power_form and feat in _LOG_FEATURE_BASES:
            factors.append(f"{_LOG_FEATURE_BASES[feat]} ** {_num(weight)}")
        else:
            score.append(f"{_num(weight)} * {FEATURE_BY_NAME[feat].dsl}")
    for weight, tokens in terms.token_groups:
        score.append(f"{_num(weight)} * (w.tok[k] in {_token_set(tokens)})")
    for feat, weight, tokens in terms.query_groups:
        score.append(f"{_num(weight)} * ({FEATURE_BY_NAME[feat].dsl} and w.tok[q] in {_token_set(tokens)})")
    if terms.profile:
        table = ", ".join(f"{d}: {_num(weight)}" for d, weight in terms.profile)
        score.append(f"{{{table}}}.get(q - k, 0.0)")
    lines.append(f"    score = {score[1] if len(score) > 1 else '0.0'}")
    for term in score[2:]:
        op, term = ("-", term[1:]) if term.startswith("-") else ("+", term)
        lines.append(f"    score = score {op} {term}")
    if power_form:
        product = " * ".join([f"{E_LITERAL} ** score", *factors])
        lines.append(f"    return {product}")
    else:
        lines.append("    return np.exp(score)")
    return "\n".join(lines) + "\n"


def build_program(name: str, terms: ProgramTerms, docstring: str, header: list[str]) -> tuple[str, CheckedProgram, CompiledProgram]:
    """Render, validate and compile; prefer the np.exp form when it compiles to a kernel.

    Returns:
        (source, checked program, compiled program).

    Raises:
        attnc.dsl.ProgramError: the source does not validate (a bug here; nothing is written).
    """
    best = None
    for power_form in (False, True):
        source = render(name, terms, docstring, header, power_form=power_form)
        checked = parse_program(source, f"{name}.py")
        compiled = compile_program(checked)
        best = (source, checked, compiled)
        if compiled.backend != "interpreted" or terms.mixture:
            break
    assert best is not None
    return best


def rerender(name: str, terms: ProgramTerms, docstring: str, header: list[str], like_source: str) -> str:
    """Render again (new header/docstring) in the same form as `like_source`, validated.

    Raises:
        attnc.dsl.ProgramError: the source does not validate (nothing is written).
    """
    power_form = not terms.mixture and "np.exp(" not in like_source
    source = render(name, terms, docstring, header, power_form=power_form)
    parse_program(source, f"{name}.py")
    return source


def write_atomic(directory: Path, filename: str, text: str) -> Path:
    """Write text to directory/filename via a temporary file and rename."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{filename}.", suffix=".tmp", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    path = directory / filename
    os.replace(tmp, path)
    return path


def provenance_header(model: str, heads: list[str], window: int, fit_iou: float, heldout_iou: float | None,
                      n_fit: int, n_heldout: int, objective: str = "iou", fitted_on: str | None = None) -> list[str]:
    """Comment lines recording where a program came from (and what text and objective it was fitted on)."""
    held = f"{heldout_iou:.4f} on {n_heldout} windows" if heldout_iou is not None else "not measured"
    return [
        "Generated by attnc's offline synthesizer (attnc/synth/offline.py); edit freely.",
        f"model: {model}; heads: {', '.join(heads)}; window: {window} tokens",
        f"fitted on: {fitted_on or 'the given windows'}; objective: {objective}",
        f"IoU (best head): fit {fit_iou:.4f} on {n_fit} windows; held-out {held}",
        f"date: {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
    ]
