"""Surrogate heads (attnc.runtime.surrogate) and the head -> program map (replacement)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnc.runtime.models import tiny_model
from attnc.runtime.replacement import ReplacementError, ReplacementMap
from attnc.runtime.surrogate import (
    CallableProgramSource,
    SurrogateError,
    install_surrogates,
)

ARCHS = ("llama", "gpt2")
ATOL = 1e-5


def uniform(ids: np.ndarray) -> np.ndarray:
    return np.ones((len(ids), len(ids)))


def previous_token(ids: np.ndarray) -> np.ndarray:
    n = len(ids)
    return np.eye(n, k=-1) + np.eye(n) * 1e-3


def self_only(ids: np.ndarray) -> np.ndarray:
    return np.eye(len(ids))


BASIC = CallableProgramSource({"uniform": uniform, "previous": previous_token, "self": self_only})


def make(arch: str, impl: str = "eager", seed: int = 0):
    loaded = tiny_model(arch, seed=seed, n_layers=2, n_heads=4, n_kv_heads=2, attn_implementation=impl)
    # Larger weights than the default init so attention is far from uniform and
    # a replaced head visibly changes the logits.
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        for name, p in loaded.model.named_parameters():
            if p.ndim == 2 and "emb" not in name and "wte" not in name and "wpe" not in name:
                p.normal_(0.0, 0.3)
    return loaded


def random_ids(loaded, batch: int, n: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(1, len(loaded.tokenizer), (batch, n), generator=gen)


def logits(model, ids, **kw) -> torch.Tensor:
    with torch.inference_mode():
        return model(ids, use_cache=False, **kw).logits


class OracleSource:
    """Program "L.H" returns head L.H's own stock attention, recorded per window."""

    def __init__(self, model, windows: list[torch.Tensor]):
        self.recorded: dict[tuple[int, ...], np.ndarray] = {}
        for w in windows:
            with torch.inference_mode():
                out = model(w[None], output_attentions=True, use_cache=False)
            self.recorded[tuple(w.tolist())] = np.stack([a[0].double().numpy() for a in out.attentions])
        n_layers, n_heads = len(out.attentions), out.attentions[0].shape[1]
        self.names = [f"{l}.{h}" for l in range(n_layers) for h in range(n_heads)]

    def matrices(self, names, ids):
        out = {}
        for name in names:
            layer, head = map(int, name.split("."))
            out[name] = np.stack([self.recorded[tuple(int(t) for t in row)][layer, head] for row in ids])
        return out


def all_heads_oracle(loaded) -> ReplacementMap:
    return ReplacementMap.from_programs(
        {(l, h): f"{l}.{h}" for l in range(loaded.n_layers) for h in range(loaded.n_heads)}
    )


# -- (a) nothing replaced -------------------------------------------------------------
@pytest.mark.parametrize("arch", ARCHS)
def test_nothing_replaced_equals_stock(arch):
    loaded = make(arch)
    ids = random_ids(loaded, 2, 12)
    stock = logits(loaded.model, ids)
    with install_surrogates(loaded, BASIC, ReplacementMap()) as handle:
        assert loaded.model.config._attn_implementation == handle.implementation
        torch.testing.assert_close(logits(loaded.model, ids), stock, atol=ATOL, rtol=0)
    assert loaded.model.config._attn_implementation == "eager"


# -- (b) oracle on every head reproduces the stock model ------------------------------
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("impl", ("eager", "sdpa"))
def test_oracle_all_heads_reproduces_stock(arch, impl):
    loaded = make(arch)
    ids = random_ids(loaded, 3, 10, seed=1)
    source = OracleSource(loaded.model, list(ids))
    loaded.model.set_attn_implementation(impl)
    stock = logits(loaded.model, ids)
    uniform_map = ReplacementMap.from_programs({(0, 0): "uniform"})
    with install_surrogates(loaded, BASIC, uniform_map):
        changed = logits(loaded.model, ids)
    assert (changed - stock).abs().max() > 1e-3, "a replaced head must change the logits"
    with install_surrogates(loaded, source, all_heads_oracle(loaded)) as handle:
        assert handle.base == impl
        torch.testing.assert_close(logits(loaded.model, ids), stock, atol=ATOL, rtol=0)
    torch.testing.assert_close(logits(loaded.model, ids), stock, atol=0, rtol=0)


# -- (c) one replaced head changes only that head ----------------------------------------
def _capture_pre_projection(loaded, layer: int):
    """Hooks recording (a) the attention module's pre-projection input, (b) its value vectors."""
    block = loaded.model.model.layers[layer].self_attn if loaded.architecture == "llama" else loaded.model.transformer.h[layer].attn
    captured = {}
    proj = block.o_proj if loaded.architecture == "llama" else block.c_proj
    value_src = block.v_proj if loaded.architecture == "llama" else block.c_attn

    def take_input(_m, args):
        captured["pre"] = args[0].detach().clone()

    def take_value(_m, _args, out):
        v = out if loaded.architecture == "llama" else out[..., 2 * out.shape[-1] // 3:]
        captured["value"] = v.detach().clone()

    return captured, [proj.register_forward_pre_hook(take_input), value_src.register_forward_hook(take_value)]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("layer,head", [(0, 3), (1, 1)])
def test_one_head_changes_only_that_head(arch, layer, head):
    loaded = make(arch)
    ids = random_ids(loaded, 2, 9, seed=2)
    d = loaded.head_dim
    kv_heads = loaded.n_kv_heads if arch == "llama" else loaded.n_heads
    groups = loaded.n_heads // kv_heads
    captured, hooks = _capture_pre_projection(loaded, layer)
    with torch.inference_mode():
        stock = loaded.model(ids, output_hidden_states=True, use_cache=False)
    stock_pre = captured["pre"]
    with install_surrogates(loaded, BASIC, ReplacementMap.from_programs({(layer, head): "uniform"})):
        with torch.inference_mode():
            replaced = loaded.model(ids, output_hidden_states=True, use_cache=False)
    for hook in hooks:
        hook.remove()
    for k in range(layer + 1):  # inputs of layers 0..layer are untouched
        torch.testing.assert_close(replaced.hidden_states[k], stock.hidden_states[k], atol=0, rtol=0)
    pre = captured["pre"].view(2, 9, loaded.n_heads, d)
    stock_pre = stock_pre.view(2, 9, loaded.n_heads, d)
    others = [h for h in range(loaded.n_heads) if h != head]
    torch.testing.assert_close(pre[:, :, others], stock_pre[:, :, others], atol=0, rtol=0)
    kv = head // groups
    value = captured["value"].view(2, 9, kv_heads, d)[:, :, kv]
    cumulative_mean = value.cumsum(dim=1) / torch.arange(1, 10).view(1, 9, 1)
    torch.testing.assert_close(pre[:, :, head], cumulative_mean, atol=1e-6, rtol=1e-5)
    assert (pre[:, :, head] - stock_pre[:, :, head]).abs().max() > 1e-4
    assert (replaced.logits - stock.logits).abs().max() > 1e-4


def test_returned_attention_weights_are_the_program():
    loaded = make("llama")
    ids = random_ids(loaded, 2, 7)
    with install_surrogates(loaded, BASIC, ReplacementMap.from_programs({(1, 2): "previous"})):
        with torch.inference_mode():
            out = loaded.model(ids, output_attentions=True, use_cache=False)
    expected = CallableProgramSource({"p": previous_token}).matrices(["p"], ids.numpy())["p"]
    np.testing.assert_allclose(out.attentions[1][:, 2].numpy(), expected, atol=1e-6)


# -- padding ---------------------------------------------------------------------------
def _padded_batch(rows: list[torch.Tensor], side: str, pad_id: int = 0):
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), pad_id)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for b, r in enumerate(rows):
        sl = slice(0, len(r)) if side == "right" else slice(length - len(r), length)
        ids[b, sl], mask[b, sl] = r, 1
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    return ids, mask, positions


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("side", ("right", "left"))
@pytest.mark.parametrize("replace", (False, True))
@pytest.mark.parametrize("impl", ("eager", "sdpa"))
def test_padded_batch_equals_single_runs(arch, side, replace, impl):
    loaded = make(arch)
    loaded.model.set_attn_implementation(impl)
    gen = torch.Generator().manual_seed(3)
    rows = [torch.randint(1, len(loaded.tokenizer), (n,), generator=gen) for n in (8, 5, 8, 3)]
    mapping = ReplacementMap.from_programs({(0, 1): "uniform", (1, 0): "previous", (1, 3): "uniform"})
    handle = install_surrogates(loaded, BASIC, mapping if replace else ReplacementMap())
    ids, mask, positions = _padded_batch(rows, side)
    batched = logits(loaded.model, ids, attention_mask=mask, position_ids=positions)
    for b, r in enumerate(rows):
        single = logits(loaded.model, r[None])[0]
        real = mask[b].bool()
        torch.testing.assert_close(batched[b, real], single, atol=ATOL, rtol=1e-5)
    handle.remove()


def test_sdpa_base_equals_eager_base_when_replaced():
    loaded = make("llama")
    ids = random_ids(loaded, 2, 11)
    mapping = ReplacementMap.from_programs({(0, 0): "uniform", (1, 3): "previous"})
    with install_surrogates(loaded, BASIC, mapping):
        eager = logits(loaded.model, ids)
    loaded.model.set_attn_implementation("sdpa")
    with install_surrogates(loaded, BASIC, mapping) as handle:
        assert handle.base == "sdpa"
        torch.testing.assert_close(logits(loaded.model, ids), eager, atol=ATOL, rtol=0)
    assert loaded.model.config._attn_implementation == "sdpa"


# -- mixtures, caching, errors ---------------------------------------------------------------
def test_mixture_is_weighted_sum_of_programs():
    loaded = make("gpt2")
    ids = random_ids(loaded, 2, 6)
    source = CallableProgramSource({
        "uniform": uniform,
        "self": self_only,
        "blend": lambda ids: 0.25 * np.tril(uniform(ids)) / np.arange(1, len(ids) + 1)[:, None] + 0.75 * np.eye(len(ids)),
    })
    with install_surrogates(loaded, source, ReplacementMap({(1, 2): [("uniform", 0.25), ("self", 0.75)]})):
        mixed = logits(loaded.model, ids)
    with install_surrogates(loaded, source, ReplacementMap.from_programs({(1, 2): "blend"})):
        blended = logits(loaded.model, ids)
    torch.testing.assert_close(mixed, blended, atol=ATOL, rtol=0)


class CountingSource(CallableProgramSource):
    def __init__(self, fns):
        super().__init__(fns)
        self.calls = []

    def matrices(self, names, ids):
        self.calls.append((tuple(names), np.asarray(ids).shape))
        return super().matrices(names, ids)


def test_matrices_computed_once_per_forward_for_all_heads():
    loaded = make("llama")
    source = CountingSource({"uniform": uniform, "previous": previous_token})
    mapping = ReplacementMap.from_programs({(0, 0): "uniform", (0, 2): "previous", (1, 1): "uniform", (1, 3): "uniform"})
    with install_surrogates(loaded, source, mapping):
        logits(loaded.model, random_ids(loaded, 3, 7))
        logits(loaded.model, random_ids(loaded, 2, 5))
    assert source.calls == [(("previous", "uniform"), (3, 7)), (("previous", "uniform"), (2, 5))]


def fragile(ids: np.ndarray) -> np.ndarray:
    if ids[0] % 2 == 0:
        raise ValueError("even first token")
    return uniform(ids)


def test_program_error_fail_names_program_head_and_window():
    loaded = make("llama")
    ids = random_ids(loaded, 4, 6, seed=5)
    ids[2, 0] = 2  # even -> fragile fails on window 2
    ids[[0, 1, 3], 0] = 3
    source = CallableProgramSource({"fragile": fragile})
    with install_surrogates(loaded, source, ReplacementMap.from_programs({(1, 2): "fragile"})) as handle:
        with pytest.raises(SurrogateError, match=r"'fragile' \(heads 1\.2\) failed on window 2"):
            logits(loaded.model, ids)
        assert handle.failures and handle.failures[0].row == 2


def test_program_error_neural_falls_back_and_counts():
    loaded = make("llama")
    ids = random_ids(loaded, 4, 6, seed=5)
    ids[:, 0] = torch.tensor([3, 2, 5, 4])  # windows 1 and 3 fail
    stock = logits(loaded.model, ids)
    mapping = ReplacementMap.from_programs({(1, 2): "fragile", (0, 1): "fragile"})
    with install_surrogates(loaded, BASIC, ReplacementMap.from_programs({(1, 2): "uniform", (0, 1): "uniform"})):
        uniform_logits = logits(loaded.model, ids)
    source = CallableProgramSource({"fragile": fragile})
    with install_surrogates(loaded, source, mapping, on_program_error="neural") as handle:
        got = logits(loaded.model, ids)
    assert handle.fallbacks == {("fragile", "0.1"): 2, ("fragile", "1.2"): 2}
    assert sorted(f.row for f in handle.failures) == [1, 3]
    torch.testing.assert_close(got[[1, 3]], stock[[1, 3]], atol=ATOL, rtol=0)
    torch.testing.assert_close(got[[0, 2]], uniform_logits[[0, 2]], atol=ATOL, rtol=0)


def test_bad_matrix_from_source_is_an_error():
    class Broken:
        def matrices(self, names, ids):
            return {n: np.full((ids.shape[0], ids.shape[1], ids.shape[1]), np.nan) for n in names}

    loaded = make("gpt2")
    with install_surrogates(loaded, Broken(), ReplacementMap.from_programs({(0, 0): "x"})):
        with pytest.raises(SurrogateError, match="non-finite"):
            logits(loaded.model, random_ids(loaded, 1, 4))


def test_unknown_head_or_program_rejected_before_any_work():
    loaded = make("llama")
    with pytest.raises(ReplacementError, match="4.0"):
        install_surrogates(loaded, BASIC, ReplacementMap.from_programs({(4, 0): "uniform"}))
    with pytest.raises(ReplacementError, match="0.9"):
        install_surrogates(loaded, BASIC, ReplacementMap.from_programs({"0.9": "uniform"}))
    with pytest.raises(SurrogateError, match="nope"):
        install_surrogates(loaded, BASIC, ReplacementMap.from_programs({(0, 0): "nope"}))
    assert loaded.model.config._attn_implementation == "eager"


def test_double_install_is_refused():
    loaded = make("llama")
    with install_surrogates(loaded, BASIC, ReplacementMap()):
        with pytest.raises(SurrogateError, match="already installed"):
            install_surrogates(loaded, BASIC, ReplacementMap())


def test_inputs_embeds_without_ids_is_a_clear_error():
    loaded = make("llama")
    embeds = loaded.model.get_input_embeddings()(random_ids(loaded, 1, 5))
    with install_surrogates(loaded, BASIC, ReplacementMap.from_programs({(0, 0): "uniform"})):
        with pytest.raises(SurrogateError, match="input_ids"):
            with torch.inference_mode():
                loaded.model(inputs_embeds=embeds, use_cache=False)


# -- ReplacementMap ------------------------------------------------------------------------
FITS = {
    "format": "attnc-fits/1",
    "heads": {
        "0.1": {"program": "a", "iou_fit": 0.5, "iou_heldout": 0.4,
                "mixture": {"programs": ["a", "b"], "weights": [0.6, 0.4], "iou_fit": 0.6, "iou_heldout": 0.5}},
        "1.0": {"program": "b", "iou_fit": 0.3, "iou_heldout": 0.2},
    },
}


def test_from_fits_best_and_mixture():
    best = ReplacementMap.from_fits(FITS)
    assert best.heads == {(0, 1): (("a", 1.0),), (1, 0): (("b", 1.0),)}
    mixture = ReplacementMap.from_fits(FITS, use="mixture")
    assert mixture.heads[(0, 1)] == (("a", 0.6), ("b", 0.4))
    assert mixture.heads[(1, 0)] == (("b", 1.0),)
    only = ReplacementMap.from_fits(FITS, heads=["1.0"])
    assert list(only) == [(1, 0)] and only.program_names() == ["b"]
    assert best.to_json() == {"0.1": [["a", 1.0]], "1.0": [["b", 1.0]]}


@pytest.mark.parametrize(
    "fits,kwargs,match",
    [
        ({"format": "other", "heads": {}}, {}, "format"),
        (FITS, {"heads": ["2.2"]}, "2.2"),
        (FITS, {"use": "worst"}, "use="),
        ({"format": "attnc-fits/1", "heads": {"x": {"program": "a"}}}, {}, "layer.head"),
        ({"format": "attnc-fits/1", "heads": {"0.0": {"program": "a",
          "mixture": {"programs": ["a", "b"], "weights": [0.9, 0.9]}}}}, {"use": "mixture"}, "sum to"),
    ],
)
def test_from_fits_errors(fits, kwargs, match):
    with pytest.raises(ReplacementError, match=match):
        ReplacementMap.from_fits(fits, **kwargs)


def test_negative_weight_rejected():
    with pytest.raises(ReplacementError, match=">= 0"):
        ReplacementMap({(0, 0): [("a", 1.5), ("b", -0.5)]})


# -- fast paths: stock attention on kept heads only, sparse P @ V, one-pass checks -----------
import attnc.runtime.surrogate as surrogate_module  # noqa: E402


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("replaced", [
    {(0, 1): "uniform"},                                          # GQA: a partial key/value group
    {(0, 0): "uniform", (0, 1): "previous", (1, 3): "self"},      # a whole group, and one head
    {(0, h): "previous" for h in range(4)} | {(1, 2): "uniform"},  # layer 0 fully replaced
])
def test_kept_heads_only_base_equals_all_heads_base(arch, replaced, monkeypatch):
    loaded = make(arch, impl="sdpa")
    gen = torch.Generator().manual_seed(4)
    rows = [torch.randint(1, len(loaded.tokenizer), (n,), generator=gen) for n in (9, 6)]
    ids, mask, positions = _padded_batch(rows, "left")
    mapping = ReplacementMap.from_programs(replaced)
    with install_surrogates(loaded, BASIC, mapping):
        kept_only = logits(loaded.model, ids, attention_mask=mask, position_ids=positions)
    monkeypatch.setattr(surrogate_module, "ALL_HEADS_BASES", frozenset({"eager", "sdpa"}))
    with install_surrogates(loaded, BASIC, mapping):
        all_heads = logits(loaded.model, ids, attention_mask=mask, position_ids=positions)
    torch.testing.assert_close(kept_only, all_heads, atol=1e-6, rtol=0)


@pytest.mark.parametrize("heads", [[0, 2, 3], [2, 3], [1]])
def test_attention_on_heads_matches_those_heads_of_the_full_run(heads):
    from transformers.models.llama.modeling_llama import eager_attention_forward

    gen = torch.Generator().manual_seed(5)
    query = torch.randn(2, 4, 7, 8, generator=gen)
    key, value = torch.randn(2, 2, 7, 8, generator=gen), torch.randn(2, 2, 7, 8, generator=gen)
    mask = torch.triu(torch.full((7, 7), float("-inf")), 1)[None, None]

    class Module(torch.nn.Module):
        num_key_value_groups = 2

    full_out, full_w = eager_attention_forward(Module(), query, key, value, mask, scaling=0.3)
    out, w = surrogate_module._attention_on_heads(eager_attention_forward, Module(), query, key, value, mask,
                                                  heads, 2, {"scaling": 0.3})
    torch.testing.assert_close(out, full_out[:, :, heads], atol=1e-6, rtol=0)
    torch.testing.assert_close(w, full_w[:, heads], atol=1e-6, rtol=0)


@pytest.mark.parametrize("width", [1, 3, 6])  # one key, a few multiply-adds, batched matmul
def test_sparse_matmul_equals_dense(width):
    gen = torch.Generator().manual_seed(6)
    batch, length, channels = 2, 10, 5
    keys = torch.randint(0, length, (batch, length, width), generator=gen)
    weights = torch.rand(batch, length, width, generator=gen)
    values = torch.randn(batch, length, channels, generator=gen)
    dense = torch.zeros(batch, length, length).scatter_add_(2, keys, weights)
    torch.testing.assert_close(surrogate_module._sparse_matmul(keys, weights, values), dense @ values,
                               atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("impl", ("eager", "sdpa"))
@pytest.mark.parametrize("side", ("right", "left"))
def test_sparse_program_heads_equal_dense(arch, impl, side, monkeypatch):
    loaded = make(arch, impl=impl)
    gen = torch.Generator().manual_seed(7)
    rows = [torch.randint(1, len(loaded.tokenizer), (n,), generator=gen) for n in (24, 17, 24)]
    ids, mask, positions = _padded_batch(rows, side)
    mapping = ReplacementMap({(0, 1): [("previous", 1.0)], (1, 0): [("previous", 0.5), ("self", 0.5)],
                              (1, 2): [("self", 1.0)], (1, 3): [("previous", 0.5), ("uniform", 0.5)]})
    calls = []
    sparse_matmul = surrogate_module._sparse_matmul
    monkeypatch.setattr(surrogate_module, "_sparse_matmul", lambda *a: calls.append(1) or sparse_matmul(*a))
    with install_surrogates(loaded, BASIC, mapping):
        sparse = logits(loaded.model, ids, attention_mask=mask, position_ids=positions)
    assert len(calls) == 3, "previous, self and their mixture are sparse at 24 tokens; the uniform mix is not"
    monkeypatch.setattr(surrogate_module, "SPARSE_RATIO", 10**9)
    with install_surrogates(loaded, BASIC, mapping):
        dense = logits(loaded.model, ids, attention_mask=mask, position_ids=positions)
    assert len(calls) == 3
    torch.testing.assert_close(sparse, dense, atol=ATOL, rtol=0)


def test_sparse_program_attention_weights_are_the_program():
    loaded = make("llama")
    ids = random_ids(loaded, 2, 24)
    with install_surrogates(loaded, BASIC, ReplacementMap.from_programs({(1, 2): "previous", (0, 0): "self"})):
        with torch.inference_mode():
            out = loaded.model(ids, output_attentions=True, use_cache=False)
    expected = CallableProgramSource({"p": previous_token}).matrices(["p"], ids.numpy())["p"]
    np.testing.assert_allclose(out.attentions[1][:, 2].numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(out.attentions[0][:, 0].numpy(), np.broadcast_to(np.eye(24), (2, 24, 24)), atol=1e-6)


def negative_but_summing_to_one(n: int) -> np.ndarray:
    m = 1.5 * np.eye(n) - 0.5 * np.eye(n, k=-1)
    m[0, 0] = 1.0
    return m


@pytest.mark.parametrize("bad,match", [
    (negative_but_summing_to_one, "not probability"),
    (lambda n: np.tril(np.ones((n, n))) / np.arange(1, n + 1)[:, None] * 0.9, "not probability"),
    (lambda n: np.roll(np.eye(n), 1, axis=1), "not causal"),
    (lambda n: np.where(np.eye(n) > 0, np.inf, 0.0), "non-finite"),
])
def test_one_pass_check_names_the_problem(bad, match):
    class Bad:
        def matrices(self, names, ids):
            return {name: np.broadcast_to(bad(ids.shape[1]), (ids.shape[0],) + (ids.shape[1],) * 2) for name in names}

    loaded = make("gpt2")
    with install_surrogates(loaded, Bad(), ReplacementMap.from_programs({(0, 0): "x"})):
        with pytest.raises(SurrogateError, match=match):
            logits(loaded.model, random_ids(loaded, 2, 6))


class SparseBasic(CallableProgramSource):
    """BASIC, with "previous" also offered as row-sparse matrices (a SparseProgramSource)."""

    def __init__(self, shift_keys: int = 0):
        super().__init__({"uniform": uniform, "previous": previous_token, "self": self_only})
        self.shift_keys = shift_keys
        self.dense_calls: list[tuple[str, ...]] = []

    def sparse_matrices(self, names, ids):
        from attnc.compiler.compiled import dense_to_sparse

        dense = CallableProgramSource({"previous": previous_token}).matrices(["previous"], ids)["previous"]
        rows = dense_to_sparse(dense, None)
        rows = type(rows)(keys=rows.keys + self.shift_keys, weights=rows.weights)
        return {"previous": rows, "uniform": None}

    def matrices(self, names, ids):
        self.dense_calls.append(tuple(names))
        return super().matrices(names, ids)


@pytest.mark.parametrize("side", ("right", "left"))
def test_sparse_source_rows_equal_dense_source(side):
    loaded = make("llama", impl="sdpa")
    gen = torch.Generator().manual_seed(8)
    rows = [torch.randint(1, len(loaded.tokenizer), (n,), generator=gen) for n in (20, 13)]
    ids, mask, positions = _padded_batch(rows, side)
    mapping = ReplacementMap({(0, 2): [("previous", 1.0)], (1, 1): [("previous", 0.5), ("uniform", 0.5)]})
    with install_surrogates(loaded, BASIC, mapping):
        dense = logits(loaded.model, ids, attention_mask=mask, position_ids=positions)
    source = SparseBasic()
    with install_surrogates(loaded, source, mapping):
        sparse = logits(loaded.model, ids, attention_mask=mask, position_ids=positions)
    assert source.dense_calls == [("uniform",), ("uniform",)], "previous must come only from sparse_matrices"
    torch.testing.assert_close(sparse, dense, atol=ATOL, rtol=0)


def test_sparse_source_rows_are_checked():
    loaded = make("llama")
    with install_surrogates(loaded, SparseBasic(shift_keys=1), ReplacementMap.from_programs({(0, 0): "previous"})):
        with pytest.raises(SurrogateError, match="program 'previous' gave sparse keys that are not positions"):
            logits(loaded.model, random_ids(loaded, 1, 6))


class IndependentSource(CountingSource):
    """"previous" and "self" declared window-independent (WindowIndependentSource); "uniform" not."""

    def window_independent(self, name):
        return name in ("previous", "self")


@pytest.mark.parametrize("side", ("right", "left"))
def test_window_independent_rows_are_reused_across_forwards_and_handles(side):
    loaded = make("llama", impl="sdpa")
    gen = torch.Generator().manual_seed(9)
    rows = [torch.randint(1, len(loaded.tokenizer), (n,), generator=gen) for n in (11, 7)]
    ids, mask, positions = _padded_batch(rows, side)
    other = random_ids(loaded, 2, 11, seed=3)  # same layout as `ids` unpadded, other tokens
    mapping = ReplacementMap({(0, 1): [("previous", 1.0)], (1, 2): [("self", 0.5), ("uniform", 0.5)]})
    with install_surrogates(loaded, BASIC, mapping):
        want = [logits(loaded.model, ids, attention_mask=mask, position_ids=positions),
                logits(loaded.model, other)]
    source = IndependentSource({"uniform": uniform, "previous": previous_token, "self": self_only})
    for _ in range(2):  # a second handle on the same source reuses the first one's rows
        with install_surrogates(loaded, source, mapping):
            got = [logits(loaded.model, ids, attention_mask=mask, position_ids=positions),
                   logits(loaded.model, other)]
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, atol=0, rtol=0)
    asked = [names for names, _ in source.calls]
    # first handle: both layouts of `ids` (lengths 11 and 7) and `other` need every program once ...
    assert asked[:3] == [("previous", "self", "uniform")] * 2 + [("previous", "self", "uniform")]
    # ... later forwards ask only for the window-dependent one
    assert all(names == ("uniform",) for names in asked[3:]) and len(asked) == 3 + 2 + 1


def test_cached_rows_work_outside_inference_mode():
    loaded = make("llama")
    source = IndependentSource({"previous": previous_token})
    mapping = ReplacementMap.from_programs({(0, 0): "previous"})
    ids = random_ids(loaded, 2, 6)
    with install_surrogates(loaded, source, mapping):
        cached_in_inference = logits(loaded.model, ids)
        loaded.model.requires_grad_(True)
        out = loaded.model(ids, use_cache=False).logits  # autograd on: rows must not be inference tensors
        out.sum().backward()
    assert len(source.calls) == 1
    torch.testing.assert_close(out.detach(), cached_in_inference, atol=ATOL, rtol=0)
