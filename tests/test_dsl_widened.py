"""The widened language: declarations, tokenizer idioms, closures, lambda keys, while/try, re, collections.

Each construct is accepted with CPython's semantics, rejected where the rules
say (with file:line:col, the rule and a hint), and bounded at run time: a
guard's stop can never be caught by a program.
"""

from __future__ import annotations

import collections
import re
import time

import numpy as np
import pytest

from attnc.dsl import ProgramError, ProgramRuntimeError, parse_program, run_reference
from attnc.dsl.errors import GuardError
from attnc.dsl.samples import SAMPLE_VOCAB, SAMPLE_WINDOWS
from attnc.dsl.tokenizer_adapter import TokenizerAdapter
from attnc.window import Vocab, Window

NATIVE_HEAD = "def f(q: int, k: int, w: Window) -> float:\n"
CAT = SAMPLE_WINDOWS["cat"]


def native(*lines: str, headers: str = "") -> str:
    return headers + "\n" + NATIVE_HEAD + "".join(f"    {line}\n" for line in lines)


def paper(*lines: str, headers: str = "") -> str:
    return ("import numpy as np\n" + headers + "\n\ndef f(sentence, tokenizer):\n"
            + "".join(f"    {line}\n" for line in lines))


def diagnostics(source: str):
    with pytest.raises(ProgramError) as info:
        parse_program(source, "v.py")
    for d in info.value.diagnostics:
        assert d.line >= 1 and d.col >= 1 and str(d).startswith(f"v.py:{d.line}:{d.col}: error: ") and d.hint
    return info.value.diagnostics


def rules(source: str) -> set[str]:
    return {d.rule for d in diagnostics(source)}


def value(source: str, ids=CAT) -> np.ndarray:
    return run_reference(parse_program(source), ids, SAMPLE_VOCAB)


def stopped(source: str, ids=CAT) -> ProgramRuntimeError:
    with pytest.raises(ProgramRuntimeError) as info:
        value(source, ids)
    assert isinstance(info.value.cause, GuardError) and info.value.line is not None
    return info.value


# -- (1) declarations ----------------------------------------------------------------------------
@pytest.mark.parametrize("header", [
    "from typing import Optional, Tuple, Callable, List, Dict, Any, Iterable, Sequence, cast, TYPE_CHECKING",
    "import typing", "import re", "from transformers import AutoTokenizer, GPT2TokenizerFast, BertTokenizer",
    "from transformers import PreTrainedTokenizer, PreTrainedTokenizerFast, PreTrainedTokenizerBase",
    "from transformers.tokenization_utils_base import PreTrainedTokenizerBase",
    "from collections import defaultdict, Counter", "from __future__ import annotations",
])
def test_harmless_declarations_are_accepted(header):
    assert parse_program(native("return 1.0", headers=header + "\n")).form == "native"


def test_declared_names_work_in_annotations():
    source = ("import typing\nimport numpy as np\nfrom typing import Optional, Callable\n"
              "from transformers import AutoTokenizer\n\n"
              "def pick(xs: typing.List[int], test: Callable[[int], bool]) -> Optional[int]:\n"
              "    return xs[0] if xs else None\n\n"
              "def f(sentence: str, tokenizer: AutoTokenizer) -> typing.Tuple[str, np.ndarray]:\n"
              "    n = len(tokenizer.encode(sentence))\n    return 'x', np.eye(n)\n")
    assert parse_program(source).form == "paper"


@pytest.mark.parametrize("use", ["t = AutoTokenizer.from_pretrained('gpt2')", "t = AutoTokenizer",
                                 "x = Optional", "x = typing.cast(int, 1)"])
def test_declared_names_are_for_annotations_only(use):
    headers = "import typing\nfrom typing import Optional\nfrom transformers import AutoTokenizer\n"
    assert "declaration" in rules(native(use, "return 1.0", headers=headers))


def test_collections_follow_cpython():
    source = paper("d = defaultdict(list)", "c = Counter('abracadabra')", "d['x'].append(1)", "d['x'].append(2)",
                   "top = c.most_common(2)", "n = len(tokenizer.encode(sentence))", "out = np.eye(n)",
                   "out[n - 1, 0] = len(d['x']) + top[0][1] + c['z'] + len(d)", "return 'x', out",
                   headers="from collections import defaultdict, Counter")
    got = value(source)
    expected = collections.Counter("abracadabra").most_common(2)[0][1] + 2 + 0 + 1
    assert got[len(CAT) - 1, 0] == pytest.approx(expected / (expected + 1))


# -- (2) tokenizer idioms ----------------------------------------------------------------------------
def test_adapter_idioms_on_the_sample_vocab():
    window = Window(CAT, SAMPLE_VOCAB)
    adapter = TokenizerAdapter(window)
    enc = adapter(window.text, return_tensors="pt", return_offsets_mapping=True)
    assert enc.tokens() == list(window.tok) and enc.words() == enc.word_ids()
    assert enc.offset_mapping.shape == (1, len(CAT), 2)
    starts, ends = enc.offset_mapping[0, :, 0], enc.offset_mapping[0, :, 1]
    assert starts[0] == 0 and ends[-1] == len(window.text) and (starts[1:] == ends[:-1]).all()
    assert window.text[slice(*enc.token_to_chars(1))] == " cat"
    assert adapter.bos_token_id == 0 and adapter.cls_token_id is None and adapter.sep_token is None
    assert adapter.convert_tokens_to_ids(["Ġcat", "nope"]) == [2, None]
    assert adapter.all_special_tokens == ["<|endoftext|>"] and len(adapter) == len(SAMPLE_VOCAB.tokens)
    assert adapter.batch_decode(np.array([[1, 2], [3, 4]])) == ["The cat", " sat on"]
    assert adapter.get_vocab()["Ġcat"] == 2 and adapter.get_vocab() is not adapter.get_vocab()


def test_tensor_spellings_are_the_identity():
    source = paper("x = tokenizer(sentence, return_tensors='pt')", "ids = x.input_ids.squeeze().cpu().detach().numpy()",
                   "first = x['input_ids'][0].tolist()", "n = ids.shape[0]", "out = np.zeros((n, n))",
                   "out[:, 0] = 1.0", "out[n - 1, n - 1] = float(first == ids.tolist())", "return 'x', out")
    assert value(source)[len(CAT) - 1, len(CAT) - 1] == 0.5


# -- (3) nested functions, lambda keys, next -------------------------------------------------------------
def test_closures_lambda_keys_and_next():
    source = native("def near(p: int) -> int:", "    return abs(p - q)",
                    "best = sorted(range(w.n), key=lambda p: (near(p), -p))",
                    "first = next((p for p in best if w.tok[p].startswith('Ġ')), -1)",
                    "top = max(range(q + 1), key=lambda p: len(w.tok[p]))",
                    "return 1.0 if k in (first, top) else 0.0")
    assert value(source).shape == (len(CAT), len(CAT))


@pytest.mark.parametrize("line, rule", [
    ("f = lambda: 1", "lambda"), ("x = sorted([1], key=lambda a: (lambda: a)())", "lambda"),
    ("x = list(map(lambda a: a, [1]))", "forbidden-name"),
    ("def g(n: int) -> int:\n        return g(n)", "recursion"),
    ("def g(n: int) -> int:\n        return h(n)\n    def h(n: int) -> int:\n        return g(n)", "recursion"),
    ("def len(x):\n        return 1", "name"),
])
def test_nested_and_lambda_rules(line, rule):
    assert rule in rules(native(line, "return 1.0"))


def test_recursion_through_values_is_stopped_at_run_time():
    error = stopped(native("def g(h, n: int) -> int:", "    return h(h, n)", "return float(g(g, 0))"))
    assert "recursive call" in str(error)


# -- (4) while and try/except -------------------------------------------------------------------------------
def test_while_and_try_follow_cpython():
    source = native("p, hits = q, 0", "while p > 0 and hits < 2:", "    p -= 1", "    try:",
                    "        hits += len(w.tok[p]) // (p % 2)", "    except ZeroDivisionError:", "        hits += 0",
                    "    except (IndexError, KeyError) as e:", "        hits = -1", "    else:", "        hits += 1",
                    "return 1.0 if k == p else 0.0")
    got = value(source)
    assert got.shape == (len(CAT), len(CAT))


def test_while_true_with_return_always_returns():
    assert parse_program(native("while True:", "    return 1.0")).form == "native"
    assert "return" in rules(native("while True:", "    break"))


@pytest.mark.parametrize("handler, rule", [("except:", "except"), ("except BaseException:", "except"),
                                           ("except KeyboardInterrupt:", "except"), ("except np.AxisError:", "except"),
                                           ("except GuardError:", "except")])
def test_except_names_builtin_exception_classes_only(handler, rule):
    assert rule in rules(native("try:", "    x = 1", handler, "    x = 2", "return 1.0", headers="import numpy as np\n"))


def test_guard_errors_are_not_exceptions_a_program_can_name():
    assert not issubclass(GuardError, Exception)
    import builtins

    from attnc.dsl import allowlist
    assert not any(issubclass(GuardError, getattr(builtins, name)) for name in allowlist.EXCEPTION_NAMES)


@pytest.mark.parametrize("guarded, message", [
    ("while True:\n                pass", "loop bound"),
    ("x = np.zeros((100000, 100000))", "elements"),
    ("x = w.vocab", "attribute"),
])
def test_except_exception_never_catches_a_guard(guarded, message):
    source = native("for attempt in range(3):", "    try:", f"        {guarded}", "    except Exception:",
                    "        pass", "return 1.0", headers="import numpy as np\n")
    assert message in str(stopped(source))


# -- (5) regular expressions -----------------------------------------------------------------------------------
def test_regex_follows_cpython_re_including_unicode_word_characters():
    tokens = list(SAMPLE_VOCAB.tokens)
    source = native("m = re.match(r'^\\W?(\\w+)', w.tok[q])", "s = re.sub(r'^Ġ', '', w.tok[k])",
                    "hit = re.fullmatch(r'[a-z]+', s, flags=re.IGNORECASE) is not None",
                    "return 1.0 if m is not None and hit and len(m.group(1)) == len(s) else 0.0",
                    headers="import re\n")
    from attnc.output_rule import apply_output_rule

    raw = np.zeros((len(CAT), len(CAT)))
    for qi, q_id in enumerate(CAT):
        for ki, k_id in enumerate(CAT):
            m = re.match(r"^\W?(\w+)", tokens[q_id])
            s = re.sub(r"^Ġ", "", tokens[k_id])
            hit = re.fullmatch(r"[a-z]+", s, flags=re.IGNORECASE) is not None
            raw[qi, ki] = 1.0 if m is not None and hit and len(m.group(1)) == len(s) else 0.0
    assert raw.any()
    np.testing.assert_array_equal(value(source), apply_output_rule(raw))


@pytest.mark.parametrize("line, rule", [
    ("x = re.search(w.text, w.text)", "regex"), ("x = re.compile('(')", "regex"), ("f = re.search", "regex"),
    ("x = re.search('a', w.text, flags=2)", "regex"), ("x = re.purge()", "regex"), ("x = re.__dict__", "dunder"),
    ("x = re._cache", "attribute"),
])
def test_regex_rules(line, rule):
    assert rule in rules(native(line, "return 1.0", headers="import re\n"))


def test_regex_without_import_is_a_name_error():
    assert "name" in rules(native("x = re.search('a', w.text)", "return 1.0"))


def test_catastrophic_backtracking_is_time_bounded():
    start = time.perf_counter()
    error = stopped(native("x = re.match(r'(a|aa)+$', 'a' * 50 + '!')", "return 1.0", headers="import re\n"))
    assert "regex time bound" in str(error) and time.perf_counter() - start < 5


def test_patterns_are_compiled_once():
    from attnc.dsl.regex_support import compile_pattern

    program = parse_program(native("x = re.search(r'zq+', w.text)", "return 1.0", headers="import re\n"))
    run_reference(program, CAT, SAMPLE_VOCAB)
    before = compile_pattern.cache_info().misses
    run_reference(program, CAT, SAMPLE_VOCAB)
    assert compile_pattern.cache_info().misses == before


# -- (6) NumPy where=/out= ---------------------------------------------------------------------------------------
def test_numpy_where_and_out_keywords():
    source = paper("n = len(tokenizer.encode(sentence))", "a = np.tril(np.ones((n, n)))", "a[:, 1:] = 0.0",
                   "b = a.sum(axis=1, keepdims=True) - 1.0",
                   "out = np.divide(a, b, out=np.zeros_like(a), where=b != 0)", "out[:, 0] += 1.0", "return 'x', out")
    got = value(source)
    assert np.isfinite(got).all() and np.allclose(got.sum(axis=1), 1.0)


# -- (8) budgets on short windows ------------------------------------------------------------------------------------
def test_cheap_programs_on_a_19_token_sentence_are_not_stopped():
    """20 triple loops (137k iterations), a while scan per pair: milliseconds in CPython, must not be stopped."""
    ids = (SAMPLE_WINDOWS["lines"] + SAMPLE_WINDOWS["cat"])[:19]
    helper = ("import numpy as np\n\ndef copies(tokens: list, n: int) -> np.ndarray:\n    out = np.zeros((n, n))\n"
              "    for i in range(n):\n        for j in range(i + 1):\n            for m in range(n):\n"
              "                if tokens[m] == tokens[j] and m <= i:\n                    out[i, j] += 1.0\n"
              "    return out\n\n")
    source = helper + paper("toks = tokenizer([sentence], return_tensors='pt')",
                   "tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0])", "n = len(tokens)",
                   "out = np.zeros((n, n))", *["out += copies(tokens, n)"] * 20,
                   "for i in range(n):", "    for j in range(i + 1):", "        p = j",
                   "        while p > 0 and tokens[p] != tokens[i]:", "            p -= 1", "        out[i, p] += 0.5",
                   "return 'x', out")
    got = value(source, ids)
    assert got.shape == (19, 19)
