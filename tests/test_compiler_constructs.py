"""Programs with interpreter-only constructs compile to the interpreter, say why, and agree with it.

For every construct the widened language accepts (while, try/except, nested
functions, lambda keys, next, re, collections, NumPy where=/out=, the newer
tokenizer idioms), each backend request gives backend "interpreted" with the
construct named in the messages, and the compiled program's matrices equal
the reference interpreter's on every sample window.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from attnc.compiler import compile_program
from attnc.compiler.library_build import build_library
from attnc.dsl import parse_program, run_reference
from attnc.dsl.samples import SAMPLE_VOCAB, SAMPLE_WINDOWS

PAPER_HEAD = "def f(sentence, tokenizer):\n    toks = tokenizer([sentence], return_tensors='pt')\n" \
             "    tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0])\n    n = len(tokens)\n" \
             "    out = np.zeros((n, n))\n"
PAPER_TAIL = "    return 'x', out\n"


def paper(*lines: str, headers: str = "") -> str:
    return "import numpy as np\n" + headers + "\n\n" + PAPER_HEAD + "".join(f"    {line}\n" for line in lines) + PAPER_TAIL


CONSTRUCTS = {
    "while": (paper("for i in range(n):", "    j = i", "    while j > 0 and tokens[j] != tokens[i - 1]:",
                    "        j -= 1", "    out[i, j] = 1.0"), "`while`"),
    "try": (paper("for i in range(n):", "    try:", "        out[i, i - 1 if i else 0] = len(tokens[i + 1])",
                  "    except IndexError:", "        out[i, i] = 1.0"), "`try/except`"),
    "nested": (paper("def near(i: int) -> int:", "    return max(0, i - 2)", "for i in range(n):",
                     "    out[i, near(i)] = 1.0"), "nested function `near`"),
    "lambda": (paper("for i in range(n):", "    j = max(range(i + 1), key=lambda p: len(tokens[p]))",
                     "    out[i, j] = 1.0"), "`lambda`"),
    "next": (paper("for i in range(n):", "    j = next((p for p in range(i + 1) if tokens[p] == tokens[i]), i)",
                   "    out[i, j] = 1.0"), "`next`"),
    "re": (paper("for i in range(n):", "    if re.search(r'^Ġ?[A-Z]', tokens[i]):", "        out[i, :i + 1] = 1.0",
                 headers="import re"), "regular expressions"),
    "collections": (paper("seen = defaultdict(list)", "c = Counter(tokens)", "for i in range(n):",
                          "    for j in seen[tokens[i]]:", "        out[i, j] = c[tokens[i]]",
                          "    seen[tokens[i]].append(i)", headers="from collections import defaultdict, Counter"),
                    "`defaultdict`"),
    "where_out": (paper("for i in range(n):", "    out[i, 0] = float(i % 2)",
                        "s = out.sum(axis=1, keepdims=True)",
                        "out = np.divide(out, s, out=np.zeros_like(out), where=s != 0)"), "NumPy `out=`"),
    "tokenizer_idioms": (paper("ids = toks.input_ids.squeeze().numpy()", "for i in range(n):",
                               "    if ids.reshape(-1)[i] == tokenizer.bos_token_id:", "        out[i, i] = 1.0",
                               "    out[i, 0] += 0.1"), "`.squeeze`"),
    "native_while": ("def f(q: int, k: int, w: Window) -> float:\n    p = q\n    while p > 0 and not w.word_start[p]:\n"
                     "        p -= 1\n    return 1.0 if k == p else 0.0\n", "`while`"),
}


@pytest.mark.parametrize("backend", ["auto", "numpy", "numba", "torch", "interpreted"])
@pytest.mark.parametrize("construct", sorted(CONSTRUCTS))
def test_construct_runs_interpreted_and_equals_the_reference(construct, backend):
    source, named = CONSTRUCTS[construct]
    program = parse_program(source, f"{construct}.py")
    compiled = compile_program(program, backend=backend)
    assert compiled.backend == "interpreted"
    if backend != "interpreted":
        assert any(named in m for m in compiled.messages), compiled.messages
    for ids in SAMPLE_WINDOWS.values():
        got = compiled.evaluate(np.array([ids]), SAMPLE_VOCAB)[0]
        np.testing.assert_array_equal(got, run_reference(program, ids, SAMPLE_VOCAB))


def test_manifest_records_the_interpreted_backend_and_the_reason(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for construct, (source, _) in CONSTRUCTS.items():
        (src / f"{construct}.py").write_text(source.replace("def f(", f"def f_{construct}("), encoding="utf-8")
    build_library([src], tmp_path / "lib")
    manifest = json.loads((tmp_path / "lib" / "manifest.json").read_text(encoding="utf-8"))
    records = {r["name"]: r for r in manifest["programs"]}
    assert len(records) == len(CONSTRUCTS)
    for construct, (_, named) in CONSTRUCTS.items():
        record = records[f"f_{construct}"]
        assert record["status"] == "ok" and record["backend"] == "interpreted"
        assert any(named in m for m in record["messages"])
