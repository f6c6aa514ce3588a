"""Faithfulness: mean ablation, the head-output objective and joint KL tuning of mixture weights.

Checked against direct computations on tiny random models: the mean-ablated
head writes exactly its mean vector; the output error of a mixture equals
||(P - A) V||^2 / ||A V||^2 computed by hand, and a candidate equal to the
neural attention is found with error 0; tuning lowers KL(stock || replaced)
and moves weight to the program that reproduces the head.
"""

import numpy as np
import pytest
import torch

from attnc.runtime.models import tiny_model
from attnc.runtime.replacement import ReplacementMap
from attnc.runtime.surrogate import CallableProgramSource
from attnc.study.attribution import GatedModel, MeanAblation, measured_impact
from attnc.study.head_outputs import _record, fit_output_mixtures, head_means
from attnc.study.tuning import TuneError, tune_mixtures


def _previous(ids):
    m = np.eye(len(ids), k=-1)
    m[0, 0] = 1.0
    return m


def _first(ids):
    m = np.zeros((len(ids), len(ids)))
    m[:, 0] = 1.0
    return m


def _uniform(ids):
    return np.tril(np.ones((len(ids), len(ids))))


@pytest.fixture(scope="module")
def llama():
    return tiny_model("llama", n_layers=2, n_heads=4)


@pytest.fixture(scope="module")
def ids():
    return np.random.default_rng(1).integers(3, 200, (6, 10))


def _neural_attention(loaded, ids):
    """Stock attention of every head: [layer][B, H, n, n] (eager)."""
    with torch.no_grad():
        out = loaded.model(torch.as_tensor(ids), output_attentions=True, use_cache=False)
    return [a.double().numpy() for a in out.attentions]


class _Store:
    """The two calls fit_output_mixtures makes of an AttentionStore, over arrays."""

    def __init__(self, ids, attn_by_layer, n_heads):
        self.ids = ids
        self.attn = np.concatenate([a for a in attn_by_layer], axis=1).astype(np.float32)  # [B, L*H, n, n]
        self.n_heads = n_heads

    def head_position(self, layer, head):
        return layer * self.n_heads + head

    def iter_windows(self, window_indices):
        rows = np.asarray(window_indices)
        yield rows, self.ids[rows], self.attn[rows]


def _oracle_source(loaded, ids, layer, head):
    """Programs "prev", "first", "uniform" and "oracle" (the head's own attention on these windows)."""
    attn = _neural_attention(loaded, ids)[layer][:, head]
    by_window = {tuple(row): a for row, a in zip(ids.tolist(), attn)}
    return CallableProgramSource({"prev": _previous, "first": _first, "uniform": _uniform,
                                  "oracle": lambda row: by_window[tuple(row.tolist())]})


def test_mean_ablation_writes_the_mean(llama, ids):
    means = head_means(llama, ids, batch_size=4)
    with GatedModel(llama) as gated:
        record = _record(gated, ids)
    manual = record[1][1][:, :, 2].double().mean(dim=(0, 1)).float().numpy()
    np.testing.assert_allclose(means.means[(1, 2)], manual, rtol=1e-5, atol=1e-6)

    seen = {}
    o_proj = llama.model.model.layers[1].self_attn.o_proj
    hook = o_proj.register_forward_pre_hook(lambda module, args: seen.setdefault("x", args[0].detach().clone()))
    ablation = MeanAblation({(1, 2): means.means[(1, 2)]})
    try:
        with GatedModel(llama, ablation) as gated:
            gated.nll(None, ids, torch.ones(1))
    finally:
        hook.remove()
    d = llama.head_dim
    written = seen["x"][:, :, 2 * d:3 * d].numpy()
    np.testing.assert_allclose(written, np.broadcast_to(means.means[(1, 2)], written.shape), atol=1e-6)
    other = seen["x"][:, :, :d].numpy()
    assert np.abs(other - means.means[(1, 0)]).max() > 1e-4  # the other heads are not ablated


def test_measured_impact_of_mean_ablation(llama, ids):
    means = head_means(llama, ids)
    ablation = MeanAblation({key: means.means[key] for key in [(0, 1), (1, 3)]})
    impact = measured_impact(llama, None, ablation, ids)
    assert set(impact.impact) == {"0.1", "1.3"}
    with GatedModel(llama, ablation) as gated:
        stock = float(gated.nll(None, ids, torch.zeros(2)))
        alone = float(gated.nll(None, ids, torch.tensor([0.0, 1.0])))
    assert impact.impact["1.3"] == pytest.approx((alone - stock) / impact.tokens, rel=1e-3, abs=1e-7)  # float32 sums differ by batch layout


def test_output_error_matches_hand_computation(llama, ids):
    layer, head = 1, 1
    source = _oracle_source(llama, ids, layer, head)
    attn = _neural_attention(llama, ids)
    store = _Store(ids, attn, llama.n_heads)
    candidates = {"1.1": ["prev", "first", "uniform"], "0.3": ["prev", "first", "oracle"]}
    fits = fit_output_mixtures(llama, store, source, candidates, list(range(len(ids))), batch_size=4)

    with GatedModel(llama) as gated:
        record = _record(gated, ids)
    groups = llama.n_heads // llama.n_kv_heads
    v = record[layer][0][:, head // groups].double().numpy()
    a = attn[layer][:, head]
    target = a @ v
    for name in ("prev", "first", "uniform"):
        p = source.matrices([name], ids)[name]
        expected = ((p @ v - target) ** 2).sum() / (target ** 2).sum()
        assert fits["1.1"].candidate_errors[name] == pytest.approx(expected, rel=1e-4)
    fit = fits["1.1"]
    assert fit.output_error <= min(fit.candidate_errors.values()) + 1e-9
    assert sum(fit.weights) == pytest.approx(1.0)
    mixed = sum(w * source.matrices([n], ids)[n] for n, w in zip(fit.programs, fit.weights))
    assert fit.output_error == pytest.approx(((mixed @ v - target) ** 2).sum() / (target ** 2).sum(), rel=1e-3)
    # head 0.3 has a wrong oracle (that of 1.1); but for 1.1 itself an exact candidate gives error 0
    exact = fit_output_mixtures(llama, store, source, {"1.1": ["prev", "oracle", "first"]}, list(range(len(ids))))
    assert exact["1.1"].programs == ("oracle",)
    assert exact["1.1"].output_error == pytest.approx(0.0, abs=1e-6)


def test_tuning_lowers_kl_and_finds_the_head(llama, ids):
    source = _oracle_source(llama, ids, 1, 1)
    start = ReplacementMap({"1.1": (("oracle", 0.3), ("first", 0.7)), "0.2": (("prev", 1.0),)})
    result = tune_mixtures(llama, source, start, ids, candidates={(0, 2): ["uniform"]}, steps=25, lr=0.2,
                           batch_size=3)
    assert result.kl_end < 0.8 * result.kl_start
    weights = dict(result.mixtures[(1, 1)])
    assert weights["oracle"] > 0.6
    assert sum(weights.values()) == pytest.approx(1.0)
    assert len(result.history) == 25 and result.stopped is None
    assert result.to_json()["tuned"]["1.1"]


def test_tuning_bad_input_and_nan(llama, ids):
    source = _oracle_source(llama, ids, 1, 1)
    start = ReplacementMap({"1.1": (("oracle", 0.5), ("first", 0.5))})
    with pytest.raises(TuneError, match="fit windows"):
        tune_mixtures(llama, source, start, ids[:0])
    with pytest.raises(TuneError, match="no heads"):
        tune_mixtures(llama, source, ReplacementMap({}), ids)
    with pytest.raises(TuneError, match="named twice"):
        tune_mixtures(llama, source, start, ids, candidates={(1, 1): ["prev", "prev"]})
    with pytest.raises(TuneError, match="not being tuned"):
        tune_mixtures(llama, source, start, ids, candidates={(0, 0): ["prev"]})
    result = tune_mixtures(llama, source, start, ids, steps=4, lr=float("inf"))  # the first step sends the weights to inf
    assert result.stopped and "kept" in result.stopped and "1.1" in result.stopped  # names the head
    assert dict(result.mixtures[(1, 1)]) == pytest.approx({"oracle": 0.5, "first": 0.5})
    single = tune_mixtures(llama, source, ReplacementMap({"1.1": (("prev", 1.0),)}), ids, steps=2)
    assert single.untunable == ["1.1"] and single.mixtures[(1, 1)] == (("prev", 1.0),)
