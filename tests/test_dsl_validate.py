"""Validation rules: names, attributes, calls, loops, recursion, entry point, literals."""

from __future__ import annotations

import pytest

from attnc.dsl import ProgramError, parse_program

NATIVE_HEAD = "def f(q: int, k: int, w: Window) -> float:\n"


def body(*lines: str) -> str:
    return NATIVE_HEAD + "".join(f"    {line}\n" for line in lines)


def rules(source: str) -> list[str]:
    with pytest.raises(ProgramError) as info:
        parse_program(source, "v.py")
    return [d.rule for d in info.value.diagnostics]


@pytest.mark.parametrize("line, rule", [
    ("x = undefined_name", "name"), ("x = open", "forbidden-name"), ("x = getattr", "forbidden-name"),
    ("x = print", "forbidden-name"), ("x = __import__", "dunder"), ("x = w.__class__", "dunder"),
    ("x = w._features", "attribute"), ("x = w.secrets", "attribute"), ("x = np.load", "numpy"),
    ("x = np.ndarray", "numpy"), ("x = 'a'.format(1)", "attribute"), ("x = '%s' % q", "format"),
    ("x = (q + 1)(k)", "call"), ("x = [len][0](w.tok)", "call"), ("x = 10000000000", "literal"),
    ("x = 2 ** 65", "literal"), ("x = 'a' * 1 + '" + "b" * 10_001 + "'", "literal"),
    ("x = np.zeros(3, like=q)", "keyword"), ("np = 1", "name"), ("x = q, k\n    x[0], x[1] = 1, 2", "assign-target"),
    ("for w.tok[0] in range(3):\n        pass", "assign-target"), ("y += 1", "name"),
])
def test_rejections_name_their_rule(line, rule):
    assert rule in rules(body(line, "return 1.0"))


def test_all_problems_are_reported_in_line_order():
    with pytest.raises(ProgramError) as info:
        parse_program(body("a = open", "b = w.secrets", "c = np.save", "d = eval", "return 1.0"), "v.py")
    lines = [d.line for d in info.value.diagnostics]
    assert lines == sorted(lines) and len(lines) == 4
    assert str(info.value).count("\n") == 3


def test_names_resolve_to_locals_params_helpers_constants_and_builtins():
    source = (
        "LIMIT = 3\nWORDS = {'a': 1, 'b': -2}\n\n"
        "def helper(x: int) -> int:\n    return x + LIMIT\n\n"
        + body("total = helper(q) + len(WORDS) + abs(-k) + int(round(1.5))", "return float(total)")
    )
    program = parse_program("import numpy as np\n" + source)
    assert program.helpers == ("helper",)
    assert program.constants == ("LIMIT", "WORDS") and program.declarations == ("import numpy as np",)


def test_module_constants_must_be_literals():
    assert "constant" in rules("X = len('a')\n\n" + body("return 1.0"))


def test_recursion_is_rejected():
    direct = "def g(x: int) -> int:\n    return g(x)\n\n" + body("return float(g(1))")
    mutual = ("def g(x: int) -> int:\n    return h(x)\n\ndef h(x: int) -> int:\n    return g(x)\n\n"
              + body("return float(g(1))"))
    assert "recursion" in rules(direct)
    assert "recursion" in rules(mutual)


def test_loop_nesting_limit_is_three_including_helpers():
    three = body("t = 0", "for a in range(2):", "    for b in range(2):", "        for c in range(2):",
                 "            t += 1", "return float(t)")
    parse_program(three)
    four = three.replace("                t += 1", "                for d in range(2):\n                    t += 1")
    assert "loop-nesting" in rules(four)
    helper = "def g(n: int) -> int:\n    t = 0\n    for i in range(n):\n        for j in range(n):\n" \
             "            t += 1\n    return t\n\n"
    assert "loop-nesting" in rules(helper + body("t = 0", "for a in range(2):", "    for b in range(2):",
                                                 "        t += g(2)", "return float(t)"))
    assert "loop-nesting" in rules(body("x = [[[[0 for a in range(2)] for b in range(2)] for c in range(2)] "
                                        "for d in range(2)]", "return 1.0"))


@pytest.mark.parametrize("source, form", [
    ("def f(q: int, k: int, w: Window) -> float:\n    return 1.0\n", "native"),
    ("def f(query: int, key: int, window: Window):\n    return 1.0\n", "native"),
    ("def f(sentence: str, tokenizer) -> tuple[str, np.ndarray]:\n    return 1\n", "paper"),
    ("def f(sentence, tokenizer):\n    return 1\n", "paper"),
    ("def f(sentence: str, tokenizer: PreTrainedTokenizerBase) -> np.ndarray:\n    return 1\n", "paper"),
])
def test_entry_signatures(source, form):
    assert parse_program(source).form == form


@pytest.mark.parametrize("source", [
    "def f(q, k, w):\n    return 1.0\n",
    "def f(q: int, k: int) -> float:\n    return 1.0\n",
    "def f(q: float, k: int, w: Window) -> float:\n    return 1.0\n",
    "X = 1\n",
    "'''only a docstring'''\n",
])
def test_no_accepted_entry_point(source):
    assert "entry" in rules(source)


def test_exactly_one_entry_point():
    two = body("return 1.0") + "\n" + body("return 2.0").replace("def f", "def g")
    assert "entry" in rules(two)
    # a function with an entry signature that the entry point calls is a helper
    calls = body("return 1.0").replace("def f", "def g") + "\n" + body("return g(q, k, w)")
    assert parse_program(calls).name == "f"


def test_entry_returns_on_every_path():
    assert "return" in rules(body("if q > k:", "    return 1.0"))
    assert "return" in rules(body("for i in range(3):", "    return 1.0"))
    parse_program(body("if q > k:", "    return 1.0", "else:", "    return 0.0"))
    assert "return" in rules(body("return"))


def test_docstring_and_helpers_are_recorded():
    source = "def g(x: int) -> int:\n    return x\n\n" + NATIVE_HEAD + '    """Doc here."""\n    return float(g(q))\n'
    program = parse_program(source)
    assert program.docstring == "Doc here." and program.helpers == ("g",)
