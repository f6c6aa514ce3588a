"""The grammar and tree builder: what parses, what does not, and how errors read."""

from __future__ import annotations

import ast
import re

import pytest

from attnc.dsl import ProgramError, parse_program
from attnc.dsl.errors import Diagnostic
from attnc.dsl.parse import parse_source

NATIVE_HEAD = "def f(q: int, k: int, w: Window) -> float:\n"


def body(*lines: str) -> str:
    return NATIVE_HEAD + "".join(f"    {line}\n" for line in lines)


def rejected(source, path: str = "p.py") -> ProgramError:
    with pytest.raises(ProgramError) as info:
        parse_program(source, path)
    return info.value


ACCEPTED_STATEMENTS = [
    ["x = 1", "return 1.0"],
    ["x, y = 1, 2", "(a, b), c = (1, 2), 3", "return 1.0"],
    ["x = y = 0", "x += 1", "x -= 1", "x *= 2", "x //= 2", "x %= 3", "x **= 2", "x /= 2", "return x"],
    ["t = 0", "for i in range(w.n):", "    if i == q:", "        continue", "    elif i > q:", "        break",
     "    else:", "        t += 1", "return t"],
    ["a = [1, 2, 3]", "s = {1, 2}", "d = {'a': 1, 'b': 2}", "e = {}", "t = ()", "u = (1,)", "return float(len(a))"],
    ["a = [i * i for i in range(5) if i % 2 == 0]", "b = {i: i for i in range(3)}", "c = {i for i in range(3)}",
     "return float(sum(x for x in a) + len(b) + len(c))"],
    ["ok = 1 < q <= 5 != k", "m = q in [1, 2] and k not in {3}", "n = w is None or w is not None",
     "return 1.0 if ok and not m else 0.0"],
    ["x = -q + +k - ~q", "y = q // 2 % 3 ** 2", "z = 1e-4 + 1.5 + .5 + 2. + 1_000", "return x * y * z"],
    ["s = w.tok[q].lower().startswith('Ġ') or w.tok[q][1:-1] == 'x'", "return 1.0 if s else 0.0"],
    ["x: int = 3", "y: list[int] = []", "pass", "return float(x)"],
    ["'''A docstring.'''", "# a comment", "return 1.0  # trailing comment"],
    ["a = max(1, 2); b = min(3, 4)", "return float(a + b)"],
    ["s = 'a' 'b' r'\\d' \"c\"", "return float(len(s))"],
    ["v = sorted([3, 1], reverse=True)", "return float(v[0])"],
    ["total = (1 +", "         2)", "return float(total)"],
]


@pytest.mark.parametrize("lines", ACCEPTED_STATEMENTS, ids=lambda lines: lines[0][:30])
def test_grammar_accepts_the_documented_constructs(lines):
    program = parse_program(body(*lines))
    assert program.form == "native"
    compile(program.module, "<test>", "exec")  # the built AST is well formed


def test_paper_form_with_headers_and_subscripts():
    source = (
        "import numpy as np\nfrom typing import List, Tuple\nfrom transformers import PreTrainedTokenizerBase\n"
        "from __future__ import annotations\n\n"
        "def f(sentence: str, tokenizer: PreTrainedTokenizerBase) -> tuple[str, np.ndarray]:\n"
        "    n = len(tokenizer([sentence], return_tensors='pt').input_ids[0])\n"
        "    out = np.zeros((n, n))\n"
        "    out[:, 0] = 1\n    out[1:, 0] += 1\n    out[0, ::2] = 2\n"
        "    return 'desc', out\n"
    )
    program = parse_program(source)
    assert program.form == "paper"
    # header import lines are declarations: they are not in the module
    assert not any(isinstance(s, (ast.Import, ast.ImportFrom)) for s in ast.walk(program.module))


def test_ast_nodes_carry_source_locations():
    program = parse_program(body("x = 1", "return float(x)"))
    assign = program.entry.body[0]
    assert (assign.lineno, assign.col_offset) == (2, 4)
    assert program.entry.body[1].value.lineno == 3


@pytest.mark.parametrize("snippet, word", [
    ("class X:\n        pass", "class"),
    ("with w as x:\n        pass", "with"), ("try:\n        pass\n    finally:\n        pass", "finally"),
    ("global x", "global"), ("nonlocal x", "nonlocal"), ("del x", "del"), ("yield 1", "yield"),
    ("await x", "await"), ("assert q", "assert"), ("raise q", "raise"),
])
def test_forbidden_keywords_are_named_with_a_location(snippet, word):
    error = rejected(body(snippet, "return 1.0"))
    (diagnostic,) = error.diagnostics
    assert diagnostic.rule == "forbidden-syntax"
    assert f"`{word}`" in diagnostic.message
    assert diagnostic.line == (4 if word == "finally" else 2) and diagnostic.col >= 5
    assert diagnostic.hint


@pytest.mark.parametrize("snippet", [
    "x = f'{q}'", "x = b'abc'", "x = rb'abc'", "x = (y := 1)", "x = 0x10", "x = 1j", "x = q << 2", "x = q @ k",
    "import os", "from os import path", "f(*q)", "f(**q)", "x = ...", "x = `q`", "w.n = 1",
])
def test_outside_the_grammar_is_a_located_error(snippet):
    error = rejected(body(snippet, "return 1.0"), path="prog.py")
    assert error.diagnostics
    assert all(d.path == "prog.py" and d.line >= 1 and d.col >= 1 for d in error.diagnostics)
    assert re.match(r"prog\.py:\d+:\d+: error: ", str(error))


@pytest.mark.parametrize("header", [
    "import os", "import numpy.linalg", "from numpy import *", "import numpy as np, os", "from . import x",
    "from .. import y", "import numpy as n", "from typing_extensions import cast", "from transformers import pipeline",
    "from collections import OrderedDict", "import re as regex", "import collections",
    "from __future__ import braces",
])
def test_only_declaration_headers_are_accepted(header):
    error = rejected(header + "\n\n" + body("return 1.0"))
    assert error.diagnostics[0].line == 1


def test_syntax_error_reports_expected_tokens():
    error = rejected(body("x = (1 + )", "return 1.0"))
    (diagnostic,) = error.diagnostics
    assert diagnostic.rule == "syntax" and diagnostic.hint.startswith("expected")


@pytest.mark.parametrize("line", ["in = 2", "x = w.if", "x = {is: 1}", "x = q.None", "x = (1 +\n    return 1.0"])
def test_keywords_are_never_names(line):
    (diagnostic,) = rejected(body(line, "return 1.0")).diagnostics
    assert diagnostic.rule == "syntax" and "keyword" in diagnostic.message


def test_diagnostic_string_format():
    d = Diagnostic("a.py", 3, 7, "name", "unknown name `x`", "use a parameter")
    assert str(d) == "a.py:3:7: error: unknown name `x` [name]; hint: use a parameter"
    assert str(Diagnostic("a.py", 1, 1, "syntax", "bad")) == "a.py:1:1: error: bad [syntax]"


@pytest.mark.parametrize("source, rule", [
    (b"", "entry"), ("   \n\n", "entry"), (b"\xff\xfe\x00", "encoding"), (NATIVE_HEAD.encode() + b"  \x00\n", "encoding"),
    ("x" * 10_000_000, "size"), (b"#" * 10_000_000, "size"), ("\ud800", "encoding"),
    (NATIVE_HEAD + "\treturn 1.0\n", "indent"), (NATIVE_HEAD + "    x = 1\n  return 1.0\n", "indent"),
    (body("return " + "(" * 1000 + "1" + ")" * 1000), "depth"), (body("return " + "-" * 3000 + "1"), "depth"),
    (body("return " + "1 + " * 3000 + "1"), "depth"), (body("return " + "not " * 3000 + "q"), "depth"),
    (body("return " + "[" * 60 + "]" * 60), "depth"), (body("x = w" + ".n" * 500, "return 1.0"), "depth"),
])
def test_hostile_text_only_ever_raises_program_error(source, rule):
    error = rejected(source)
    assert error.diagnostics[0].rule == rule


@pytest.mark.parametrize("value", [None, 42, ["def f(): pass"]])
def test_non_text_sources_are_program_errors(value):
    assert rejected(value).diagnostics[0].rule == "encoding"


def test_crlf_and_bom_are_accepted():
    program = parse_program(("\ufeff" + body("x = 1", "return float(x)")).replace("\n", "\r\n"))
    assert program.name == "f"


def test_parse_never_uses_python_parser(monkeypatch):
    """The module is built from Lark nodes: ast.parse/compile/exec are never called while parsing."""
    import builtins

    def forbidden(*args, **kwargs):
        raise AssertionError("Python's parser or exec was used on program text")

    monkeypatch.setattr(ast, "parse", forbidden)
    monkeypatch.setattr(builtins, "compile", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "eval", forbidden)
    program = parse_program(body("x = [i for i in range(3)]", "return float(len(x))"))
    assert program.name == "f"


def test_tree_builder_reports_bad_targets_without_raising():
    _, parsed = parse_source(body("f(q) = 1", "return 1.0"))
    assert [d.rule for d in parsed.diagnostics] == ["assign-target"]


def _without_imports(module: ast.Module) -> str:
    module.body = [s for s in module.body if not isinstance(s, (ast.Import, ast.ImportFrom))]
    return ast.dump(module, include_attributes=False)


def test_built_ast_equals_pythons_own_parse_of_the_corpus():
    """The tree builder agrees with CPython's parser (used here in a test only, never on the run path)."""
    from pathlib import Path

    paths = sorted((Path(__file__).parent / "dsl_good").glob("*.py"))
    extra = [body(*lines) for lines in ACCEPTED_STATEMENTS]
    for source in [p.read_text(encoding="utf-8") for p in paths] + extra:
        program = parse_program(source)
        assert _without_imports(program.module) == _without_imports(ast.parse(source)), source
        ast.unparse(program.module)  # code generators can print it back
