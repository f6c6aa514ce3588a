"""The loss-impact estimate: gated attention at g = 1 is the surrogate model, at g = 0 the stock
model, and the reported impact is the derivative of the loss in g (checked by finite differences)."""

import numpy as np
import pytest
import torch

from attnc.runtime.models import tiny_model
from attnc.runtime.perplexity import window_nll
from attnc.runtime.replacement import ReplacementMap
from attnc.runtime.surrogate import CallableProgramSource, install_surrogates
from attnc.study.attribution import GatedModel, loss_impact, order_by_iou, replacement_prefix


def _source():
    def previous(ids):
        n = len(ids)
        m = np.eye(n, k=-1)
        m[0, 0] = 1.0
        return m

    def first(ids):
        m = np.zeros((len(ids), len(ids)))
        m[:, 0] = 1.0
        return m

    return CallableProgramSource({"prev": previous, "first": first})


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def setup(request):
    loaded = tiny_model(request.param, n_layers=2, n_heads=4)
    ids = np.random.default_rng(0).integers(0, 200, (5, 12))
    replacement = ReplacementMap({"0.0": (("prev", 1.0),), "1.3": (("first", 0.5), ("prev", 0.5)),
                                  "0.2": (("first", 1.0),)})
    return loaded, ids, replacement


def _nll(loaded, ids):
    return float(window_nll(loaded.model, torch.as_tensor(ids)).sum())


def test_gate_ends_are_stock_and_surrogate(setup):
    loaded, ids, replacement = setup
    stock = _nll(loaded, ids)
    implementation = loaded.model.config._attn_implementation
    with install_surrogates(loaded, _source(), replacement, on_program_error="fail"):
        replaced = _nll(loaded, ids)
    gated = GatedModel(loaded, replacement)
    with gated:
        at_zero = float(gated.nll(_source(), ids, torch.zeros(3)))
        at_one = float(gated.nll(_source(), ids, torch.ones(3)))
    assert at_zero == pytest.approx(stock, rel=1e-5)
    assert at_one == pytest.approx(replaced, rel=1e-5)
    assert abs(replaced - stock) > 1e-4  # the test would notice a gate that does nothing
    assert loaded.model.config._attn_implementation == implementation  # restored


def test_impact_is_the_loss_derivative(setup):
    loaded, ids, replacement = setup
    got = loss_impact(loaded, _source(), replacement, ids, batch_size=2)
    tokens = ids.shape[0] * (ids.shape[1] - 1)
    assert got.tokens == tokens
    gated = GatedModel(loaded, replacement)
    eps = 1e-2
    with gated:
        for g, (key, _) in enumerate(gated.heads):
            plus, minus = torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
            plus[g], minus[g] = eps, -eps
            numeric = (float(gated.nll(_source(), ids, plus.float())) - float(gated.nll(_source(), ids, minus.float()))) / (2 * eps * tokens)
            assert got.impact[f"{key[0]}.{key[1]}"] == pytest.approx(numeric, rel=0.05, abs=2e-5)


def test_orders_and_prefix():
    assert order_by_iou({"0.1": 0.5, "0.0": 0.9, "1.0": 0.5}) == ["0.0", "0.1", "1.0"]
    replacement = ReplacementMap.from_programs({"0.0": "a", "0.1": "b", "1.0": "c"})
    prefix = replacement_prefix(["1.0", "0.0", "0.1"], replacement, 2)
    assert dict(prefix.heads) == {(0, 0): (("a", 1.0),), (1, 0): (("c", 1.0),)}


def test_measured_impact_equals_single_head_replacement(setup):
    from attnc.study.attribution import measured_impact

    loaded, ids, replacement = setup
    got = measured_impact(loaded, _source(), replacement, ids[:3], max_batch=4)  # 1 head per pass, then 3 rows
    tokens = 3 * (ids.shape[1] - 1)
    stock = _nll(loaded, ids[:3])
    for key, mixture in replacement.heads.items():
        with install_surrogates(loaded, _source(), ReplacementMap({key: mixture}), on_program_error="fail"):
            alone = _nll(loaded, ids[:3])
        assert got.impact[f"{key[0]}.{key[1]}"] == pytest.approx((alone - stock) / tokens, rel=1e-3, abs=2e-6)
    batched = measured_impact(loaded, _source(), replacement, ids[:3], max_batch=16)  # all heads in one pass
    for head, value in got.impact.items():
        assert batched.impact[head] == pytest.approx(value, rel=1e-3, abs=2e-6)


def test_measured_impact_replays_from_the_first_replaced_layer(setup, monkeypatch):
    """Starting each pass at its first replaced layer gives the same impacts as whole forwards."""
    from attnc.study import attribution
    from attnc.study.attribution import measured_impact

    loaded, ids, replacement = setup
    assert attribution._LayerReplay.for_model(loaded.model) is not None  # the replay path is the one tested
    replayed = measured_impact(loaded, _source(), replacement, ids, max_batch=10)
    monkeypatch.setattr(attribution, "_REPLAY_MODULES", {})
    whole = measured_impact(loaded, _source(), replacement, ids, max_batch=10)
    assert set(replayed.impact) == set(whole.impact) == {"0.0", "0.2", "1.3"}
    for head, value in whole.impact.items():
        assert replayed.impact[head] == pytest.approx(value, rel=1e-4, abs=1e-7), head
    assert abs(whole.impact["0.0"]) > 1e-5  # a head whose replacement changes the loss


def test_screened_impact_measures_the_cheapest_estimates_exactly(setup):
    """The heads the estimate finds cheapest are measured (as measured_impact would) and ranked
    first; the rest follow by their estimate. Mean ablation screens the same way."""
    from attnc.study.attribution import MeanAblation, measured_impact, screened_impact

    loaded, ids, replacement = setup
    order, measured, estimated = screened_impact(loaded, _source(), replacement, ids[:3], measure=2)
    cheapest = set(estimated.order()[:2])
    assert set(measured.impact) == cheapest and set(estimated.impact) == {"0.0", "0.2", "1.3"}
    full = measured_impact(loaded, _source(), replacement, ids[:3])
    for head in cheapest:
        assert measured.impact[head] == pytest.approx(full.impact[head], rel=1e-4, abs=1e-7)
    assert order[:2] == measured.order() and order[2:] == [h for h in estimated.order() if h not in cheapest]
    means = MeanAblation({(0, 0): np.zeros(8, np.float32), (1, 1): np.ones(8, np.float32),
                          (1, 2): np.ones(8, np.float32)})
    order, measured, _ = screened_impact(loaded, _source(), means, ids[:3], measure=1)
    assert len(measured.impact) == 1 and sorted(order) == ["0.0", "1.1", "1.2"]


def _logits(loaded, ids):
    with torch.no_grad():
        return loaded.model(torch.as_tensor(ids)).logits.float()


def test_measured_kl_equals_single_head_divergence(setup):
    """criterion="kl": each head's mean KL(stock || replaced) per predicted token, as replacing it
    alone with install_surrogates gives; the same with many heads per pass, on the replay path."""
    from attnc.study.attribution import measured_impact

    loaded, ids, replacement = setup
    got = measured_impact(loaded, _source(), replacement, ids[:3], max_batch=4, criterion="kl")
    assert got.criterion == "kl"
    stock = torch.log_softmax(_logits(loaded, ids[:3])[:, :-1], dim=-1)
    tokens = 3 * (ids.shape[1] - 1)
    for key, mixture in replacement.heads.items():
        with install_surrogates(loaded, _source(), ReplacementMap({key: mixture}), on_program_error="fail"):
            alone = torch.log_softmax(_logits(loaded, ids[:3])[:, :-1], dim=-1)
        expected = float((stock.exp() * (stock - alone)).sum()) / tokens
        assert expected > 1e-6  # the head's replacement changes the distribution: the check can fail
        assert got.impact[f"{key[0]}.{key[1]}"] == pytest.approx(expected, rel=1e-3, abs=1e-7)
    batched = measured_impact(loaded, _source(), replacement, ids[:3], max_batch=16, criterion="kl")
    for head, value in got.impact.items():
        assert batched.impact[head] == pytest.approx(value, rel=1e-3, abs=1e-7)
        assert value >= 0.0


def test_screened_kl_order_and_unknown_criterion(setup):
    """A KL order screens by the loss estimate and ranks the measured heads by their KL."""
    from attnc.study.attribution import measured_impact, screened_impact

    loaded, ids, replacement = setup
    order, measured, estimated = screened_impact(loaded, _source(), replacement, ids[:3], measure=2, criterion="kl")
    assert measured.criterion == "kl" and set(measured.impact) == set(estimated.order()[:2])
    assert order[:2] == sorted(measured.impact, key=lambda h: (measured.impact[h], h))
    with pytest.raises(ValueError, match="criterion 'entropy'"):
        measured_impact(loaded, _source(), replacement, ids[:3], criterion="entropy")
