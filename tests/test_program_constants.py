"""Program constants as parameters: which literals, differentiable matrices, source written back, tuning."""

import math

import numpy as np
import pytest
import torch

from attnc.compiler import compile_program
from attnc.dsl import parse_program
from attnc.runtime.models import tiny_model
from attnc.runtime.replacement import ReplacementMap
from attnc.study.program_constants import NotTunable, ParametricProgram, format_constant, tunable_literals
from attnc.study.tuning import tune_mixtures, tuned_name, tuned_program_sources

LOGLINEAR = '''import numpy as np


def loglin(q: int, k: int, w: Window) -> float:
    """A log-linear head: previous token, punctuation keys, a distance exponent."""
    score = 1.25 * (k == q - 1)
    score = score - 0.5 * w.is_punct[k]
    score = score + 0.0 * (k == 0)
    return 2.718281828459045 ** score * (max(q - k, 0) + 1.0) ** -0.3
'''

DECAY = '''def decay(q: int, k: int, w: Window) -> float:
    """Attention decays with distance."""
    return 0.9 ** (q - k)
'''


PROFILE = '''import numpy as np


def profile(q: int, k: int, w: Window) -> float:
    """A relative-position profile (a literal table over distances) and punctuation keys."""
    score = {0: 1.5, 1: -0.75, 2: 0.25}.get(q - k, 0.0)
    score = score - 0.5 * w.is_punct[k]
    return np.exp(score)
'''


@pytest.fixture(scope="module")
def loaded():
    return tiny_model("llama", n_layers=2, n_heads=4)


def _ids(loaded, n=12, batch=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(3, len(loaded.tokenizer), size=(batch, n)).astype(np.int64)


def test_tunable_literals_skip_structure_constants():
    values = [lit.value for lit in tunable_literals(LOGLINEAR)]
    assert values == [1.25, 0.5, 0.3]  # not 0.0, 1.0, e, nor the integers
    assert tunable_literals("def f(q: int, k: int, w: Window) -> float:\n    return 1.0 if k == q - 1 else 0.0\n") == []


def test_matrices_equal_the_compiled_program_and_carry_gradients(loaded):
    ids = _ids(loaded)
    program = ParametricProgram("loglin", LOGLINEAR, loaded.vocab)
    assert list(program.initial) == [1.25, 0.5, 0.3]
    values = torch.tensor(program.initial, requires_grad=True)
    got = program.matrices(ids, values)
    want = compile_program(parse_program(LOGLINEAR)).evaluate(ids, loaded.vocab)
    np.testing.assert_allclose(got.detach().numpy(), want, atol=1e-12)
    (got * torch.rand_like(got)).sum().backward()
    assert values.grad is not None and torch.all(values.grad != 0)


def test_source_with_new_constants_is_a_valid_program_computing_them(loaded):
    ids = _ids(loaded, seed=1)
    program = ParametricProgram("loglin", LOGLINEAR, loaded.vocab)
    new = [2.0004, -0.25, 0.712]  # the second flips sign: written as `- (-0.25)`
    text = program.source_with(new, "loglin_tuned_l0_h1", "tuned on a test\nimport os")
    assert text.splitlines()[:2] == ["# tuned on a test", "# import os"]  # a note never becomes code
    checked = parse_program(text)
    assert checked.name == "loglin_tuned_l0_h1"
    rounded = program.rounded(new)
    assert list(rounded) == [2.0, -0.25, 0.712]
    want = program.matrices(ids, torch.tensor(rounded)).numpy()
    got = compile_program(checked).evaluate(ids, loaded.vocab)
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert format_constant(-0.25) == "(-0.25)" and format_constant(1e-9) == "0.0001"


def test_not_tunable_programs_say_why(loaded):
    with pytest.raises(NotTunable, match="no tunable constants"):
        ParametricProgram("prev", "def prev(q: int, k: int, w: Window) -> float:\n"
                                  "    return 1.0 if k == q - 1 else 0.0\n", loaded.vocab)
    loop = ("def paper(sentence, tokenizer):\n    toks = tokenizer(sentence)\n    n = len(toks.input_ids)\n"
            "    out = np.zeros((n, n))\n    for i in range(n):\n        out[i, 0] = 0.5\n    return 'x', out\n")
    with pytest.raises(NotTunable):
        ParametricProgram("paper", "import numpy as np\n\n\n" + loop, loaded.vocab)


def test_tuned_names():
    assert tuned_name("decay", (3, 1)) == "decay_tuned_l3_h1"
    assert tuned_name("decay_tuned_l3_h1", (4, 2)) == "decay_tuned_l4_h2"
    assert tuned_name("offline.w128.l0_h2_w128", (0, 2)) == "l0_h2_w128_tuned_l0_h2"


class _Decays:
    """A ProgramSource of two decays (the tuning's fixed matrices)."""

    def __init__(self, vocab):
        self.vocab = vocab
        self.programs = {"decay": compile_program(parse_program(DECAY))}

    def matrices(self, names, ids):
        return {n: self.programs[n].evaluate(ids, self.vocab) for n in names}


def test_tuning_constants_lowers_the_kl_and_writes_programs(loaded):
    """A head replaced by a decay: tuning its base moves it and lowers KL(stock || replaced)."""
    ids = _ids(loaded, n=16, batch=4, seed=2)
    source = _Decays(loaded.vocab)
    start = ReplacementMap({(0, 1): (("decay", 1.0),), (1, 2): (("decay", 1.0),)})
    program = ParametricProgram("decay", DECAY, loaded.vocab)
    result = tune_mixtures(loaded, source, start, ids, constants={(0, 1): [program], (1, 2): [program]},
                           steps=12, constants_lr=0.05, batch_size=2)
    assert result.kl_end < result.kl_start
    assert set(result.constants) <= {((0, 1), "decay"), ((1, 2), "decay")} and result.constants
    for values in result.constants.values():  # the base moved, and stays a valid decay base
        assert values != [0.9] and all(math.isfinite(v) for v in values)
    mixtures, sources = tuned_program_sources(result, {"decay": program}, "tuned in a test")
    for name, text in sources.items():
        assert parse_program(text).name == name
    assert any(n.startswith("decay_tuned_l") for mixture in mixtures.values() for n, _ in mixture)


def test_constants_for_a_program_the_head_does_not_mix_are_refused(loaded):
    from attnc.study.tuning import TuneError

    ids = _ids(loaded, n=16, batch=2)
    start = ReplacementMap({(0, 1): (("decay", 1.0),)})
    other = ParametricProgram("loglin", LOGLINEAR, loaded.vocab)
    with pytest.raises(TuneError, match="does not mix it"):
        tune_mixtures(loaded, _Decays(loaded.vocab), start, ids, constants={(0, 1): [other]}, steps=1)


class _Loglin(_Decays):
    def __init__(self, vocab):
        self.vocab = vocab
        self.programs = {"loglin": compile_program(parse_program(LOGLINEAR))}


def test_constants_that_overflow_stop_tuning_and_keep_the_last_good_ones(loaded):
    """A learning rate that sends e ** score to inf: tuning stops, names the head and program, loses nothing."""
    ids = _ids(loaded, n=16, batch=4, seed=3)
    start = ReplacementMap({(1, 2): (("loglin", 1.0),)})
    program = ParametricProgram("loglin", LOGLINEAR, loaded.vocab)
    result = tune_mixtures(loaded, _Loglin(loaded.vocab), start, ids, constants={(1, 2): [program]},
                           steps=20, constants_lr=1e4, batch_size=2)
    assert result.stopped is not None and "loglin" in result.stopped and "1.2" in result.stopped
    assert math.isfinite(result.kl_end) and result.kl_end <= result.kl_start
    for values in result.constants.values():
        assert all(math.isfinite(v) and abs(v) < 1e4 for v in values)


def test_a_profile_table_is_tuned_and_written_back_as_a_kernel(loaded):
    """The values of a `{d: v}.get(q - k, 0.0)` profile are constants like any other; a sign
    the tuning flips (`-(-0.5)`) still compiles to a kernel, not the interpreter."""
    ids = _ids(loaded, seed=2)
    program = ParametricProgram("profile", PROFILE, loaded.vocab)
    assert list(program.initial) == [1.5, 0.75, 0.25, 0.5]
    values = torch.tensor(program.initial, requires_grad=True)
    got = program.matrices(ids, values)
    want = compile_program(parse_program(PROFILE)).evaluate(ids, loaded.vocab)
    np.testing.assert_allclose(got.detach().numpy(), want, atol=1e-12)
    (got * torch.rand_like(got)).sum().backward()
    assert torch.all(values.grad != 0)
    text = program.source_with([1.0, -0.5, 0.75, 0.25], "profile_tuned", "tuned on a test")
    assert "-(-0.5)" in text
    compiled = compile_program(parse_program(text))
    assert compiled.backend == "numpy", compiled.messages
    np.testing.assert_allclose(compiled.evaluate(ids, loaded.vocab),
                               program.matrices(ids, torch.tensor([1.0, -0.5, 0.75, 0.25])).numpy(), atol=1e-12)
