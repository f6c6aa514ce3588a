"""Fuzzing the parser: any text, any bytes, any mutation of a valid program.

Property: `parse_program` either accepts or raises ProgramError (never any
other exception), and nothing ever executes: mutants are built around a
sentinel program whose pieces would create /tmp/attnc_pwned_fuzz if they
ever ran `open`/`os.system`; accepted mutants are also run by the reference
interpreter, which may only return a matrix or raise ProgramRuntimeError.
Run with `--hypothesis-show-statistics` to see how many examples ran.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnc.dsl import ProgramError, ProgramRuntimeError, parse_program, run_reference
from attnc.dsl.samples import SAMPLE_VOCAB, SAMPLE_WINDOWS

MARKER = "/tmp/attnc_pwned_fuzz"
SENTINEL = '''import numpy as np


def sentinel(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Pieces of an attack, kept inert: mutations must never make them run."""
    path = "/tmp/attnc_pwned_fuzz"
    mode = "w"
    command = "touch /tmp/attnc_pwned_fuzz"
    tokens = tokenizer.convert_ids_to_tokens(tokenizer([sentence], return_tensors="pt").input_ids[0])
    n = len(tokens)
    out = np.zeros((n, n))
    opener = len
    for i in range(n):
        for j in range(i + 1):
            if tokens[i].lower() == tokens[j].lower():
                out[i, j] = float(opener(path)) + 1.0
    return "sentinel", out
'''
#: The same attack pieces around the widened grammar: while, try/except, closures, lambda, re, collections.
SENTINEL_WIDE = '''import re
import numpy as np
from collections import Counter, defaultdict
from typing import Optional


def sentinel_wide(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Mutations must never make the inert pieces run or let a guard be caught."""
    path = "/tmp/attnc_pwned_fuzz"
    command = "touch /tmp/attnc_pwned_fuzz"
    enc = tokenizer(sentence, return_tensors="pt", return_offsets_mapping=True)
    tokens = enc.tokens()
    n = len(tokens)
    out = np.zeros((n, n))
    counts = Counter(tokens)
    seen = defaultdict(list)
    opener = len

    def weight(i: int, j: int) -> Optional[float]:
        return float(opener(path)) if re.match(r"^Ġ?[a-z]+$", tokens[j]) else None

    for i in range(n):
        j = i
        while j >= 0:
            try:
                value = weight(i, j)
                out[i, j] = value if value is not None else counts[tokens[j]]
            except (TypeError, IndexError):
                pass
            j -= 1
        best = max(range(i + 1), key=lambda p: len(tokens[p]))
        first = next((p for p in seen[tokens[i]]), best)
        out[i, first] += 1.0
        seen[tokens[i]].append(i)
    return "sentinel", out
'''
GOOD = [SENTINEL, SENTINEL_WIDE] + [p.read_text(encoding="utf-8") for p in sorted((Path(__file__).parent / "dsl_good").glob("*.py"))]
#: Tokens a mutation may insert: attack fragments and grammar punctuation.
TOKENS = ["open", "(path, mode)", "os", ".system(command)", "__import__", "exec", "eval", "import os\n", "lambda",
          "while", "__class__", ".__globals__", "getattr", "f", "b", "@", ":=", "**", "*", "(", ")", "[", "]", "{",
          "}", ":", ",", ".", "'", '"', "\n", "    ", "\t", "#", "\\", "opener", "path", "np", ".load", "10**12",
          "global", "_", "\x00", "\r", "def ", "return ", "for ", " in ", "if ", "else", "not ", "yield",
          "while True:\n", "try:\n", "except:\n", "except Exception as e:\n", "except BaseException:", "finally:",
          "lambda p: ", "key=", "re.", "re.__dict__", "import re\n", "r\"(a|aa)+$\"", "next(", "defaultdict(open)",
          "from typing import cast\n", "AutoTokenizer.from_pretrained", ".__closure__", ".__globals__", "e.args",
          "def inner():\n", "inner()", "sentinel_wide(sentence, tokenizer)"]


@pytest.fixture(autouse=True)
def no_marker():
    if os.path.exists(MARKER):
        os.remove(MARKER)
    yield
    assert not glob.glob(MARKER), "a mutated program executed an attack"


def check(source) -> None:
    try:
        program = parse_program(source, "fuzz.py")
    except ProgramError as exc:
        assert exc.diagnostics and all(d.line >= 1 and d.col >= 1 for d in exc.diagnostics)
        return
    try:
        out = run_reference(program, SAMPLE_WINDOWS["cat"], SAMPLE_VOCAB)
    except ProgramRuntimeError:
        return
    assert np.isfinite(out).all()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_random_text(text):
    check(text)


@settings(max_examples=200, deadline=None)
@given(st.binary())
def test_random_bytes(data):
    check(data)


def _mutate(source: str, data) -> str:
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        unit = data.draw(st.sampled_from(["char", "line", "token"]), label="unit")
        if unit == "line":
            parts, joiner = source.split("\n"), "\n"
        elif unit == "token":
            parts, joiner = source.split(" "), " "
        else:
            parts, joiner = list(source), ""
        if not parts:
            parts = [""]
        op = data.draw(st.sampled_from(["delete", "insert", "duplicate", "swap"]), label="op")
        i = data.draw(st.integers(0, len(parts) - 1), label="index")
        j = data.draw(st.integers(0, len(parts) - 1), label="other")
        if op == "delete":
            del parts[i]
        elif op == "insert":
            parts.insert(i, data.draw(st.sampled_from(TOKENS) | st.text(max_size=3), label="inserted"))
        elif op == "duplicate":
            parts.insert(i, parts[j])
        else:
            parts[i], parts[j] = parts[j], parts[i]
        source = joiner.join(parts)
    return source


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_programs(data):
    base = data.draw(st.sampled_from(GOOD), label="base")
    check(_mutate(base, data))


@pytest.mark.parametrize("source", [SENTINEL, SENTINEL_WIDE], ids=["sentinel", "wide"])
def test_sentinel_is_a_valid_program_and_inert(source):
    program = parse_program(source)
    run_reference(program, SAMPLE_WINDOWS["cat"], SAMPLE_VOCAB)
    assert not os.path.exists(MARKER)
