"""A generator of varied paper-form loop programs, written the way LLMs write them.

`paper_loop_sources(count, seed)` returns `count` distinct programs
`def name(sentence, tokenizer) -> tuple[str, np.ndarray]` in the paper's
setting: tokenize with `tokenizer([sentence], return_tensors="pt")`, convert
ids to tokens, fill `out = np.zeros((n, n))` with Python loops over positions
and conditionals on token strings (`startswith`, `strip`, `lower`, `in` a
literal set, `isalpha`, ...), then `out += eps` and normalise the rows. Each
program is one to three of a dozen pattern blocks (pairwise conditions, decays,
scans that remember the last position of something, backward searches with
`break`, counters, per-token flag lists, fallbacks for empty rows), each with
its own predicates, variable names and constants, so the programs differ in
structure (and so in their generated kernels), not only in their literals, as
a real LLM-written library does.

Used by benchmarks/compile_cold_bench.py (`attnc bench compile-cold`) and the
tests as a fixture; the programs are made here, not copied from anywhere.
"""

from __future__ import annotations

import random

_WORDS = [("he", "she", "him", "her"), ("the", "a", "an"), ("and", "but", "or"), ("in", "on", "at", "to"),
          ("it", "they", "them"), ("was", "is", "were", "be"), ("said", "asked", "told"), ("mom", "dad"),
          ("cat", "dog", "bird"), ("one", "two", "three"), ("of", "for", "with"), ("not", "no", "never"),
          ("who", "which", "that"), ("i", "you", "we")]
_PUNCT = [(".", "!", "?"), (",", ";", ":"), ("(", ")"), ('"', "'"), (".", ","), ("-", ":")]
_DESCRIPTIONS = ["Attention to related tokens", "Syntactic pattern", "Local context head", "Pointer head",
                 "Tokens attend to earlier markers", "Copy-like pattern", "Delimiter tracking"]


class _Writer:
    """Builds one program's lines with fresh local names."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.lines: list[str] = []
        self.used: set[str] = set()

    def name(self, *options: str) -> str:
        for candidate in self.rng.sample(options, len(options)):
            if candidate not in self.used:
                self.used.add(candidate)
                return candidate
        base = options[0]
        suffix = 2
        while f"{base}{suffix}" in self.used:
            suffix += 1
        self.used.add(f"{base}{suffix}")
        return f"{base}{suffix}"

    def add(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)


def _token_predicate(rng: random.Random, token: str) -> str:
    """A condition on one token string expression, in one of the ways LLMs spell it."""
    kind = rng.randrange(10)
    words = rng.choice(_WORDS)
    punct = rng.choice(_PUNCT)
    if kind == 0:
        return f'{token}.startswith("Ġ")'
    if kind == 1:
        return f'{token}.replace("Ġ", "").lower() in {set(words)!r}'
    if kind == 2:
        return f'{token}.strip("Ġ") in {list(punct)!r}'
    if kind == 3:
        return f'{token}.lstrip("Ġ").isalpha()'
    if kind == 4:
        return f'{token}.lstrip("Ġ")[:1].isupper()'
    if kind == 5:
        return f'{token}.lower().strip("Ġ") in {tuple(words)!r}'
    if kind == 6:
        return f'len({token}.lstrip("Ġ")) > {rng.randint(2, 6)}'
    if kind == 7:
        return f'{token}.strip("Ġ").isdigit()'
    if kind == 8:
        return f'"Ċ" in {token}'
    return f'{token}.endswith({rng.choice(["ing", "ed", "s", "ly"])!r})'


def _maybe_negate(rng: random.Random, condition: str) -> str:
    return f"not {condition}" if rng.random() < 0.2 else condition


def _block_pairwise(w: _Writer, tokens: str, out: str) -> None:
    rng = w.rng
    i, j = w.name("i", "q", "row"), w.name("j", "k", "col")
    upper = rng.choice([f"range({i} + 1)", f"range({i})", "range(n)"])
    w.add(1, f"for {i} in range(n):")
    w.add(2, f"for {j} in {upper}:")
    cond = _maybe_negate(rng, _token_predicate(rng, f"{tokens}[{j}]"))
    if rng.random() < 0.5:
        cond = f"{cond} and {_token_predicate(rng, f'{tokens}[{i}]')}"
    if rng.random() < 0.3:
        cond = f"{cond} and {i} - {j} <= {rng.randint(2, 12)}"
    weight = rng.choice(["1.0", f"1.0 / ({i} - {j} + 1)", f"{rng.uniform(0.3, 0.95):.2f} ** abs({i} - {j})",
                         f"{rng.uniform(0.5, 3.0):.1f}"])
    w.add(3, f"if {cond}:")
    w.add(4, f"{out}[{i}, {j}] {rng.choice(['=', '+='])} {weight}")


def _block_same_token(w: _Writer, tokens: str, out: str) -> None:
    rng = w.rng
    i, j = w.name("i", "cur"), w.name("j", "prev")
    lower = rng.choice(["", ".lower()", '.strip("Ġ")', '.replace("Ġ", "").lower()'])
    w.add(1, f"for {i} in range(n):")
    w.add(2, f"for {j} in range({i}):")
    w.add(3, f"if {tokens}[{i}]{lower} == {tokens}[{j}]{lower}:")
    if rng.random() < 0.5:
        w.add(4, f"if {j} + 1 < n:")
        w.add(5, f"{out}[{i}, {j} + 1] += {rng.choice(['1.0', '0.5', '2.0'])}")
    else:
        w.add(4, f"{out}[{i}, {j}] = {rng.choice(['1.0', '0.8', '1.5'])}")


def _block_last_marker(w: _Writer, tokens: str, out: str) -> None:
    rng = w.rng
    last, i = w.name("last", "last_seen", "anchor"), w.name("i", "pos", "t")
    w.add(1, f"{last} = {rng.choice(['0', '-1'])}")
    w.add(1, f"for {i} in range(n):")
    cond = _token_predicate(rng, f"{tokens}[{i}]")
    if rng.random() < 0.5:
        w.add(2, f"if {cond}:")
        w.add(3, f"{last} = {i}")
        w.add(2, f"if {last} >= 0:")
        w.add(3, f"{out}[{i}, {last}] = {rng.choice(['1.0', '2.0', '0.7'])}")
    else:
        w.add(2, f"if {last} >= 0:")
        w.add(3, f"{out}[{i}, {last}] += 1.0")
        w.add(2, "else:")
        w.add(3, f"{out}[{i}, {i}] += 1.0")
        w.add(2, f"if {cond}:")
        w.add(3, f"{last} = {i}")


def _block_backward_search(w: _Writer, tokens: str, out: str) -> None:
    rng = w.rng
    i, j = w.name("i", "q"), w.name("j", "back")
    w.add(1, f"for {i} in range(n):")
    w.add(2, f"for {j} in range({i} - 1, -1, -1):")
    w.add(3, f"if {_token_predicate(rng, f'{tokens}[{j}]')}:")
    w.add(4, f"{out}[{i}, {j}] = 1.0")
    w.add(4, "break")


def _block_window(w: _Writer, tokens: str, out: str) -> None:
    rng = w.rng
    i, d = w.name("i", "center"), w.name("d", "offset")
    width = rng.randint(2, 8)
    w.add(1, f"for {i} in range(n):")
    w.add(2, f"for {d} in range({width}):")
    if rng.random() < 0.5:
        w.add(3, f"if {i} - {d} >= 0:")
        w.add(4, f"{out}[{i}, {i} - {d}] += {rng.uniform(0.3, 0.9):.2f} ** {d}")
    else:
        j = w.name("j", "key")
        w.add(3, f"{j} = {i} - {d}")
        w.add(3, f"if {j} >= 0 and not {_token_predicate(rng, f'{tokens}[{j}]')}:")
        w.add(4, f"{out}[{i}, {j}] += 1.0 / ({d} + 1)")


def _block_flags(w: _Writer, tokens: str, out: str) -> None:
    rng = w.rng
    flags = w.name("is_marker", "marks", "flags", "keep")
    t = w.name("t", "tok")
    w.add(1, f"{flags} = [{_token_predicate(rng, t)} for {t} in {tokens}]")
    i, j = w.name("i", "q"), w.name("j", "k")
    w.add(1, f"for {i} in range(n):")
    w.add(2, f"for {j} in range({i} + 1):")
    w.add(3, f"if {flags}[{j}]{rng.choice(['', f' and not {flags}[{i}]', f' and {flags}[{i}]'])}:")
    w.add(4, f"{out}[{i}, {j}] = {rng.choice(['1.0', '0.5'])}")


def _block_counter(w: _Writer, tokens: str, out: str) -> None:
    rng = w.rng
    count, i = w.name("count", "depth", "level"), w.name("i", "p")
    opener, closer = rng.choice([("(", ")"), ("[", "]"), ('"', '"'), ("{", "}")])
    w.add(1, f"{count} = 0")
    w.add(1, f"for {i} in range(n):")
    w.add(2, f'if {tokens}[{i}].strip("Ġ") == {opener!r}:')
    w.add(3, f"{count} += 1")
    w.add(2, f'elif {tokens}[{i}].strip("Ġ") == {closer!r} and {count} > 0:')
    w.add(3, f"{count} -= 1")
    w.add(2, f"if {count} > 0:")
    w.add(3, f"{out}[{i}, {rng.choice(['0', f'{i}'])}] += 1.0")
    w.add(2, "else:")
    w.add(3, f"{out}[{i}, max({i} - 1, 0)] += {rng.choice(['1.0', '0.5'])}")


def _block_previous(w: _Writer, tokens: str, out: str) -> None:
    rng = w.rng
    i = w.name("i", "idx")
    offset = rng.randint(1, 3)
    w.add(1, f"for {i} in range({offset}, n):")
    if rng.random() < 0.5:
        w.add(2, f"{out}[{i}, {i} - {offset}] = 1.0")
    else:
        w.add(2, f"if {_token_predicate(rng, f'{tokens}[{i}]')}:")
        w.add(3, f"{out}[{i}, {i} - {offset}] += 1.0")
        w.add(2, "else:")
        w.add(3, f"{out}[{i}, {i}] += {rng.choice(['0.5', '1.0'])}")


def _block_sentence(w: _Writer, tokens: str, out: str) -> None:
    rng = w.rng
    start, i = w.name("start", "sent_start", "begin"), w.name("i", "j")
    w.add(1, f"{start} = 0")
    w.add(1, f"for {i} in range(n):")
    w.add(2, f"{out}[{i}, {start}] += {rng.choice(['1.0', '2.0'])}")
    w.add(2, f'if {tokens}[{i}].strip("Ġ") in {list(rng.choice(_PUNCT[:2]))!r}:')
    w.add(3, f"{start} = min({i} + 1, n - 1)")


def _block_first(w: _Writer, tokens: str, out: str) -> None:
    i = w.name("i", "row")
    w.add(1, f"for {i} in range(n):")
    w.add(2, f"{out}[{i}, 0] += {w.rng.choice(['0.1', '0.5', '1.0', '0.05'])}")


def _block_distance(w: _Writer, tokens: str, out: str) -> None:
    rng = w.rng
    i, j = w.name("i", "a"), w.name("j", "b")
    w.add(1, f"for {i} in range(n):")
    w.add(2, f"for {j} in range({i} + 1):")
    dist = w.name("dist", "gap")
    w.add(3, f"{dist} = {i} - {j}")
    w.add(3, f"if {dist} % {rng.randint(2, 4)} == 0:")
    w.add(4, f"{out}[{i}, {j}] += 1.0 / (1 + {dist})")


_BLOCKS = (_block_pairwise, _block_same_token, _block_last_marker, _block_backward_search, _block_window,
           _block_flags, _block_counter, _block_previous, _block_sentence, _block_distance)


def paper_loop_source(name: str, rng: random.Random) -> str:
    """One program named `name`: a docstring, the tokenizer idioms, 1-3 blocks, a fallback and the ending."""
    w = _Writer(rng)
    tokens, out = w.name("tokens", "toks_str", "pieces"), w.name("out", "attn", "scores", "mat")
    enc = w.name("toks", "enc", "inputs")
    w.used.update({"n", "ids"})
    header = ["import numpy as np"]
    if rng.random() < 0.3:
        header.append("from typing import Tuple")
    w.add(1, f'"""{rng.choice(_DESCRIPTIONS)} ({name})."""')
    w.add(1, f'{enc} = tokenizer([sentence], return_tensors="pt")')
    if rng.random() < 0.5:
        w.add(1, f"ids = {enc}.input_ids[0]")
        w.add(1, f"{tokens} = tokenizer.convert_ids_to_tokens(ids)")
        w.add(1, f"n = len({tokens})")
    else:
        w.add(1, f"n = len({enc}.input_ids[0])")
        w.add(1, f"{tokens} = tokenizer.convert_ids_to_tokens({enc}.input_ids[0])")
    w.add(1, f"{out} = np.zeros((n, n))")
    for block in rng.sample(_BLOCKS, rng.choice([1, 1, 2, 2, 2, 3])):
        block(w, tokens, out)
    if rng.random() < 0.3:
        _block_first(w, tokens, out)
    if rng.random() < 0.3:
        i = w.name("i", "r")
        w.add(1, f"for {i} in range(n):")
        w.add(2, f"if {out}[{i}].sum() == 0:")
        w.add(3, f"{out}[{i}, {rng.choice([i, '0'])}] = 1.0")
    w.add(1, f"{out} += {rng.choice(['1e-4', '1e-6', '1e-3', '1e-5'])}")
    w.add(1, f"{out} = {out} / {out}.sum(axis=1, keepdims=True)")
    w.add(1, f'return "{rng.choice(_DESCRIPTIONS)}", {out}')
    ret = "Tuple[str, np.ndarray]" if "from typing import Tuple" in header else "tuple[str, np.ndarray]"
    return "\n".join(header) + f"\n\n\ndef {name}(sentence: str, tokenizer) -> {ret}:\n" + "\n".join(w.lines) + "\n"


def paper_loop_sources(count: int = 500, seed: int = 0) -> dict[str, str]:
    """`count` distinct programs, name -> source (names `head_<k>_<pattern>`), reproducible by `seed`."""
    rng = random.Random(seed)
    out: dict[str, str] = {}
    seen: set[str] = set()
    while len(out) < count:
        name = f"head_{len(out):04d}_{rng.choice(['pattern', 'attn', 'syntax', 'pointer', 'copy'])}"
        source = paper_loop_source(name, rng)
        body = source.split("\n", 3)[-1].replace(name, "")
        if body in seen:
            continue
        seen.add(body)
        out[name] = source
    return out
