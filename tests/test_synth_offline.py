"""Tests of the offline synthesizer (attnc/synth/offline*.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from attnc.compiler import compile_program
from attnc.dsl import load_program, parse_program
from attnc.output_rule import apply_output_rule
from attnc.runtime.models import tiny_model
from attnc.study.iou import iou_reference_batch
from attnc.synth.offline import REPORT_FILE, synthesize_offline
from attnc.synth.offline_emit import ProgramTerms, build_program
from attnc.synth.offline_features import CLASS_FEATURES, FEATURES, feature_tensor
from attnc.synth.offline_fit import FitConfig, fit_heads
from attnc.synth.offline_templates import template_grid
from attnc.window import window_features

FAST = FitConfig(ce_steps=40, steps=60, refit_steps=30)
SHARED_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinystories" / "valid-dev.txt"


@pytest.fixture(scope="module")
def tiny():
    return tiny_model("llama", n_layers=2, n_heads=2, n_kv_heads=1)


@pytest.fixture(scope="module")
def tiny_ids(tiny):
    rng = np.random.default_rng(0)
    return rng.integers(0, len(tiny.tokenizer), size=(12, 16))


def _softmax_rows(score: np.ndarray) -> np.ndarray:
    n = score.shape[-1]
    s = np.where(np.tril(np.ones((n, n), dtype=bool)), score, -np.inf)
    s = s - s.max(axis=-1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=-1, keepdims=True)


def test_features_numpy_match_emitted_program(tiny, tiny_ids):
    """The NumPy definitions used for fitting equal what the emitted DSL terms compute.

    One program holds every feature with a distinct weight, so a wrong feature shows up.
    """
    vocab = tiny.vocab
    names = tuple(f.name for f in FEATURES)
    weights = tuple(round(0.3 + 0.11 * i, 2) * (-1) ** i for i in range(len(names)))
    feats = feature_tensor(window_features(tiny_ids, vocab), names).astype(np.float64)
    expected = _softmax_rows(feats @ np.array(weights))
    _, _, compiled = build_program("probe", ProgramTerms(weights=tuple(zip(names, weights))), "Probe.", [])
    assert compiled.backend != "interpreted", compiled.messages
    np.testing.assert_allclose(compiled.evaluate(tiny_ids, vocab), expected, atol=1e-6)
    for i, name in enumerate(names):  # each feature's own column is not constant-zero on these windows
        # (token classes are rare among random ids: their values are checked above, through the program)
        if name not in ("open_bracket", "previous_copy", "induction", "same_token") and name not in CLASS_FEATURES:
            assert feats[..., i].std() > 0, name


def test_token_group_term_matches(tiny, tiny_ids):
    vocab = tiny.vocab
    tokens = tuple(sorted({vocab.tokens[int(i)] for i in tiny_ids[0, :3]}))
    _, _, compiled = build_program("tok", ProgramTerms(token_groups=((1.5, tokens),)), "Tokens.", [])
    member = np.isin(np.array([[vocab.tokens[int(i)] for i in row] for row in tiny_ids]), tokens)
    expected = _softmax_rows(np.broadcast_to(1.5 * member[:, None, :], tiny_ids.shape + (tiny_ids.shape[1],)))
    np.testing.assert_allclose(compiled.evaluate(tiny_ids, vocab), expected, atol=1e-9)


def test_query_group_term_matches(tiny, tiny_ids):
    """A query-token group scales its feature only for query tokens in the set, in a native kernel."""
    vocab = tiny.vocab
    tokens = tuple(sorted({vocab.tokens[int(i)] for i in tiny_ids[0, :4]}))
    terms = ProgramTerms(weights=(("sink", 0.5),), query_groups=(("prev1", 2.5, tokens),))
    _, _, compiled = build_program("qtok", terms, "Query tokens.", [])
    assert compiled.backend != "interpreted", compiled.messages
    feats = feature_tensor(window_features(tiny_ids, vocab), ("sink", "prev1")).astype(np.float64)
    in_set = np.isin(np.array([[vocab.tokens[int(i)] for i in row] for row in tiny_ids]), tokens)
    expected = _softmax_rows(0.5 * feats[..., 0] + 2.5 * feats[..., 1] * in_set[:, :, None])
    np.testing.assert_allclose(compiled.evaluate(tiny_ids, vocab), expected, atol=1e-9)


def test_templates_parse_and_match_their_matrices(tiny, tiny_ids):
    grid = template_grid()
    assert len(grid) > 20
    for template in grid[::17]:
        _, _, compiled = build_program(template.name, ProgramTerms(mixture=template.dsl_terms()), "T.", [])
        got = compiled.evaluate(tiny_ids[:2], tiny.vocab)
        expected = apply_output_rule(np.broadcast_to(template.matrix(16), (2, 16, 16)))
        np.testing.assert_allclose(got, expected, atol=1e-9)


@pytest.fixture(scope="module")
def tiny_run(tiny, tiny_ids, tmp_path_factory):
    out = tmp_path_factory.mktemp("offline")

    class Split:
        ids = tiny_ids
        split = np.arange(len(tiny_ids)) % 3 == 0  # a third held out

    report = synthesize_offline(tiny, Split(), out_dir=out, config=FAST, progress=False)
    return report, out


def test_tiny_model_programs_validate_compile_and_reproduce_report(tiny, tiny_ids, tiny_run):
    report, out = tiny_run
    heads = [f"{layer}.{head}" for layer in range(2) for head in range(2)]
    assert sorted(report.head_program) == heads
    assert 1 <= report.n_programs <= len(heads)
    files = sorted(out.glob("*.py"))
    assert {p.stem for p in files} == set(report.programs)
    assert all(name.endswith("_w16") for name in report.programs)  # window in the name: runs can share a directory
    assert json.loads((out / REPORT_FILE).read_text())["n_programs"] == report.n_programs

    from attnc.runtime.extract import iter_attention

    attn = np.concatenate([a for _, a in iter_attention(tiny, tiny_ids)])
    fit_rows = np.arange(len(tiny_ids)) % 3 != 0
    held_rows = ~fit_rows
    for path in files:
        source = path.read_text()
        assert source.startswith("# Generated by attnc's offline synthesizer")
        program = parse_program(source, str(path))
        compiled = compile_program(program)
        mats = compiled.evaluate(tiny_ids, tiny.vocab)
        for head, name in report.head_program.items():
            if name != program.name:
                continue
            h = heads.index(head)
            held = iou_reference_batch(attn[held_rows, h], mats[held_rows]).mean()
            fit = iou_reference_batch(attn[fit_rows, h], mats[fit_rows]).mean()
            assert held == pytest.approx(report.heldout_iou[head], abs=1e-6)
            assert fit == pytest.approx(report.fit_iou[head], abs=1e-6)


def test_recovers_known_log_linear_head(tiny, tmp_path):
    """A synthetic head whose attention is exactly sink + previous token (log-linear) is recovered."""
    rng = np.random.default_rng(1)
    ids = rng.integers(0, len(tiny.tokenizer), size=(24, 40))  # > ROWS_PER_WINDOW: row sampling
    feats = feature_tensor(window_features(ids, tiny.vocab), ("sink", "prev1", "log_distance"))
    truth = _softmax_rows(2.0 * feats[..., 0] + 3.0 * feats[..., 1] - 1.0 * feats[..., 2])
    attn = truth[:, None].astype(np.float32)  # one head

    class Split:
        split = np.arange(24) >= 16

    Split.ids = ids
    report = synthesize_offline(tiny, Split(), heads=[(0, 0)], out_dir=tmp_path, attention=attn,
                                config=FAST, progress=False, templates=False)
    assert report.heldout_iou["0.0"] > 0.95
    program = load_program(next(tmp_path.glob("*.py")))
    mats = compile_program(program).evaluate(ids[16:], tiny.vocab)
    assert iou_reference_batch(truth[16:], mats).mean() == pytest.approx(report.heldout_iou["0.0"], abs=1e-6)


def test_recovers_query_dependent_head(tiny, tmp_path):
    """A head that attends to the previous token only after some query tokens gets a query-token set."""
    from attnc.synth.offline_emit import safe_token

    vocab = tiny.vocab
    pool = np.array([i for i in range(len(tiny.tokenizer)) if safe_token(vocab.tokens[i])][:10])
    rng = np.random.default_rng(2)
    ids = pool[rng.integers(0, len(pool), size=(48, 16))]
    switch = pool[:3]
    feats = feature_tensor(window_features(ids, vocab), ("sink", "prev1"))
    truth = _softmax_rows(2.0 * feats[..., 0] + 5.0 * feats[..., 1] * np.isin(ids, switch)[:, :, None])

    class Split:
        split = np.arange(48) >= 32

    Split.ids = ids
    report = synthesize_offline(tiny, Split(), heads=[(0, 0)], out_dir=tmp_path, attention=truth[:, None],
                                config=FAST, progress=False, templates=False)
    source = next(tmp_path.glob("*.py")).read_text()
    assert "w.tok[q] in" in source
    assert report.heldout_iou["0.0"] > 0.9


def test_max_programs_caps_output(tiny, tiny_ids, tmp_path):
    report = synthesize_offline(tiny, tiny_ids, out_dir=tmp_path, max_programs=1, config=FAST, progress=False)
    assert report.n_programs == 1
    assert len(list(tmp_path.glob("*.py"))) == 1
    assert report.heldout_iou == {}
    with pytest.raises(ValueError, match="max_programs"):
        synthesize_offline(tiny, tiny_ids, out_dir=tmp_path, max_programs=0, progress=False)


@pytest.mark.realmodel
@pytest.mark.slow
def test_smollm2_handful_of_heads(tmp_path):
    if not SHARED_CORPUS.exists():
        pytest.skip(f"shared TinyStories data not found at {SHARED_CORPUS}")
    from attnc.runtime.corpus import make_windows, read_corpus
    from attnc.runtime.models import load_model

    loaded = load_model("smollm2-135m")
    windows = make_windows(read_corpus(SHARED_CORPUS), loaded.tokenizer, window=24, heldout_fraction=0.5,
                           max_windows=80)
    heads = [(0, 0), (3, 5), (10, 2), (20, 7)]
    report = synthesize_offline(loaded, windows, heads=heads, out_dir=tmp_path, progress=False)
    assert set(report.heldout_iou) == {"0.0", "3.5", "10.2", "20.7"}
    assert report.mean_heldout_iou() > 0.5


def test_faithful_objective_lowers_the_heads_output_error(tiny, tiny_ids):
    """Fitted to what each head writes (||(P - A) V||), models write it more closely than IoU-fitted ones.

    Synthetic heads the feature family cannot fit exactly (previous token and sink plus per-entry
    noise) and values ten times larger on every third key: the IoU counts every key's mass alike,
    the output error weighs the large-value keys, so the two optima differ. (The tiny random
    model's own heads are useless here: their values are nearly constant over keys, so every
    pattern writes nearly the same output, and which objective wins was decided by float noise.)
    """
    rng = np.random.default_rng(0)
    n_win, n, n_heads = tiny_ids.shape[0], tiny_ids.shape[1], 3
    names = tuple(f.name for f in FEATURES)
    feats = feature_tensor(window_features(tiny_ids, tiny.vocab), names).astype(np.float64)
    planted = 3 * feats[..., names.index("prev1")] + 2 * feats[..., names.index("sink")]
    attn = np.stack([_softmax_rows(planted + rng.normal(0, 1.5, (n_win, n, n))) for _ in range(n_heads)], axis=1)
    values = rng.normal(0, 1, (n_win, n_heads, n, 4)) * np.where(np.arange(n) % 3 == 0, 10.0, 0.5)[:, None]
    _, key_token = np.unique(tiny_ids, return_inverse=True)
    key_token = key_token.reshape(tiny_ids.shape)
    errors = {}
    for objective in ("iou", "faithful"):
        config = FitConfig(ce_steps=40, steps=60, refit_steps=30, objective=objective, max_tokens=0, query_features=())
        models = fit_heads(attn, feats.astype(np.float32), names, key_token, ["t"] * (key_token.max() + 1),
                           [f"0.{h}" for h in range(n_heads)], config, values=values)
        errors[objective] = []
        for h, model in enumerate(models):
            p = _softmax_rows(feats @ np.array([model.weights.get(name, 0.0) for name in names]))
            target = attn[:, h] @ values[:, h]
            errors[objective].append((((p - attn[:, h]) @ values[:, h]) ** 2).sum() / (target ** 2).sum())
    faithful, iou = np.array(errors["faithful"]), np.array(errors["iou"])
    assert (faithful < iou).all() and (faithful / iou).mean() < 0.95, errors


def test_faithful_objective_writes_its_header_and_refuses_unknown_objectives(tiny, tiny_ids, tmp_path):
    report = synthesize_offline(tiny, tiny_ids, out_dir=tmp_path / "f", config=FAST, progress=False,
                                objective="faithful", templates=False, fitted_on="random test windows")
    for name in set(report.head_program.values()):
        source = (tmp_path / "f" / f"{name}.py").read_text()
        assert "# fitted on: random test windows; objective: faithful" in source
        compile_program(parse_program(source))
    with pytest.raises(ValueError, match="objective"):
        synthesize_offline(tiny, tiny_ids, out_dir=tmp_path / "bad", objective="loss", progress=False)


def test_token_class_features_match_emitted_program_on_english(tiny):
    """Key-class and query x key class features, on text where the classes occur, equal the emitted DSL."""
    vocab = tiny.vocab
    text = ('The dog and he ran to the park.\nTom is in a box, and she was with him! "Yes," said Mia. '
            "He has 3 cats.")
    ids = np.array([tiny.tokenizer(text)["input_ids"]])
    names = tuple(sorted(CLASS_FEATURES))
    weights = tuple(round(0.2 + 0.07 * i, 2) * (-1) ** i for i in range(len(names)))
    feats = feature_tensor(window_features(ids, vocab), names).astype(np.float64)
    for i, name in enumerate(names):
        assert feats[..., i].std() > 0, name  # every class feature is exercised
    _, _, compiled = build_program("classes", ProgramTerms(weights=tuple(zip(names, weights))), "Probe.", [])
    np.testing.assert_allclose(compiled.evaluate(ids, vocab), _softmax_rows(feats @ np.array(weights)), atol=1e-6)


def test_total_terms_are_capped_by_importance(tiny):
    """A head built from five positional features keeps only `max_total_terms` of them (the most
    important: the strongest weights), refitted; without the cap it keeps more."""
    from attnc.synth.offline_fit import fit_heads

    rng = np.random.default_rng(3)
    ids = rng.integers(0, len(tiny.tokenizer), size=(16, 24))
    names = ("sink", "prev1", "prev2", "self", "log_distance")
    feats = feature_tensor(window_features(ids, tiny.vocab), names)
    truth = _softmax_rows(4.0 * feats[..., 0] + 3.0 * feats[..., 1] + 0.4 * feats[..., 2]
                          + 0.3 * feats[..., 3] - 0.2 * feats[..., 4])
    strings, key_token = np.unique(ids, return_inverse=True)
    args = (truth[:, None].astype(np.float32), feats, names, key_token.reshape(ids.shape),
            [str(s) for s in strings], ["0.0"])
    capped, = fit_heads(*args, config=FitConfig(ce_steps=40, steps=60, refit_steps=30, min_importance=0.0,
                                                min_token_count=10**6, max_total_terms=2, profile_length=0))
    free, = fit_heads(*args, config=FitConfig(ce_steps=40, steps=60, refit_steps=30, min_importance=0.0,
                                              min_token_count=10**6, max_total_terms=0, profile_length=0))
    assert set(capped.weights) == {"sink", "prev1"}
    assert len(free.weights) > 2
    assert capped.weights["sink"] > 1.0 and capped.weights["prev1"] > 1.0


def test_a_distance_profile_is_fitted_as_one_table_and_emitted_as_a_kernel(tiny):
    """A head that weighs keys by distance (not monotone: 2 back more than 1 back) is fitted by
    the relative-position profile; with a budget of 2 terms it keeps the profile (one term)
    and the sink; the emitted program is one `{d: w}.get(q - k, 0.0)` table, compiles to a
    kernel and computes what the fitted model does."""
    from attnc.synth.offline import _terms_from_model
    from attnc.synth.offline_fit import fit_heads

    rng = np.random.default_rng(5)
    ids = rng.integers(0, len(tiny.tokenizer), size=(16, 24))
    names = tuple(f.name for f in FEATURES[:9])  # positional features, prev1..prev4 among them
    feats = feature_tensor(window_features(ids, tiny.vocab), names)
    n = ids.shape[1]
    back = np.arange(n)[:, None] - np.arange(n)[None, :]
    table = {0: 1.0, 1: 0.5, 2: 2.5, 3: -1.0, 5: 1.5}
    score = np.vectorize(lambda d: table.get(int(d), 0.0))(back)[None] + 3.0 * feats[..., names.index("sink")]
    truth = _softmax_rows(score)
    strings, key_token = np.unique(ids, return_inverse=True)
    model, = fit_heads(truth[:, None].astype(np.float32), feats, names, key_token.reshape(ids.shape),
                       [str(s) for s in strings], ["0.0"],
                       config=FitConfig(ce_steps=80, steps=120, refit_steps=60, min_importance=0.0,
                                        min_token_count=10**6, max_total_terms=2, profile_length=8))
    assert len(model.profile) == 8 and set(model.weights) <= {"sink"}
    assert model.fit_iou > 0.9
    fitted = np.array(model.profile) - model.profile[4]  # a softmax is shift-invariant: compare to 4 back (0)
    np.testing.assert_allclose(fitted[[0, 1, 2, 3, 5]], [1.0, 0.5, 2.5, -1.0, 1.5], atol=0.35)
    terms = _terms_from_model(model)
    source, _, compiled = build_program("profile_head", terms, "Probe.", [])
    assert ".get(q - k, 0.0)" in source and compiled.backend != "interpreted", compiled.messages
    assert source.count("score = ") <= 3  # the profile is one line, not one term per distance
    want = np.vectorize(lambda d: dict(terms.profile).get(int(d), 0.0))(back)[None] + sum(
        w * feats[..., names.index(f)] for f, w in terms.weights)
    np.testing.assert_allclose(compiled.evaluate(ids, tiny.vocab), _softmax_rows(want), atol=1e-6)
