"""Fit log-linear attention models to heads by gradient ascent on IoU.

A head's attention row is modelled as a softmax over keys of a linear score

    score(q, k) = sum_f theta_f * feature_f(q, k) + sum_g c_g * [tok(k) in set_g]
                  + sum_j sum_s d_js * feature_j(q, k) * [tok(q) in set_js]
                  + profile[q - k]                 (0 beyond FitConfig.profile_length)

(attention is itself a softmax, so this form fits well). The profile is a
relative-position profile: one weight per distance back over the last few
tokens (positional heads under RoPE are smooth or periodic functions of
distance), written as one literal table `{0: .., 1: ..}.get(q - k, 0.0)` and
counted as one term; it takes the place of the self / prev1..prev4 indicators. The last sum lets
the query token modulate a few positional features (`FitConfig.query_features`:
how much the sink, self or previous token is attended depends on what the
query token is, which is most of what separates early-layer heads). Fitting is done for
a group of heads at once on a precomputed feature tensor [W, n, n, F]:

1. all features plus one key bias per vocabulary entry seen in the fit
   windows and one query bias per (query feature, vocabulary entry), with an
   L1 penalty on those biases (Adam on cross-entropy, then on 1 - mean IoU);
2. selection: keep the `max_terms` most important features (IoU lost
   when the feature's weight is zeroed) and the `max_tokens` strongest token biases,
   quantised into at most `max_token_groups` sets; likewise per query feature
   whose query biases matter, `max_query_tokens` tokens in `max_query_groups` sets;
3. a short refit of the kept weights only;
4. readability: when a head keeps more than `max_total_terms` weighted terms
   (pairwise features, token sets and query sets together), the terms whose
   removal costs least are dropped (importance by zeroing, as in 2) and the
   rest refitted again, so a program reads as at most about a dozen terms.

The IoU optimised is the project's metric (rows clipped to [1e-12, 1],
sum min / sum max), which is differentiable almost everywhere.

`FitConfig.objective` chooses what steps 1-3 minimise per head: ``iou``
(1 - IoU), ``faithful`` (the head's relative output error
||(P - A) V_h||^2 / ||A V_h||^2, see attnc.study.head_outputs: pattern errors
weighted by how much they change what the head writes) or ``both`` (their
sum); the last two need the heads' value vectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from attnc.study.iou import EPS


@dataclass
class FitConfig:
    """Knobs of the fit (defaults measured on SmolLM2-135M / TinyStories).

    Attributes:
        ce_steps: Adam steps minimising cross-entropy first (convex; a good start for IoU).
        steps, refit_steps: Adam steps of the full IoU fit and of the refit.
        lr: Adam learning rate.
        token_l1: L1 penalty on per-token key biases (keeps them sparse).
        max_terms: most pairwise features kept per head.
        max_tokens: most token strings given a key bias per head.
        min_token_count: a token must occur in this many fit windows to get a bias.
        max_token_groups: token biases are quantised into this many sets.
        min_importance: features whose removal costs less IoU than this are dropped.
        query_features: pairwise features whose weight may depend on the query token.
        max_query_tokens: most query tokens given a bias per query feature.
        max_query_groups: query biases of one feature are quantised into this many sets.
        max_total_terms: most weighted terms per head after the refit (features, token
            sets and query sets together; 0: no cap).
        objective: "iou", "faithful" or "both" (module docstring).
        profile_length: distances 0..L-1 back get one profile weight each (0: no profile,
            the default). On 18 heads of SmolLM2 (layers 2 and 10, valid-dev windows 0..199,
            held-out IoU) L = 8 gains a little with objective "iou" (0.471 vs 0.466) and loses
            with "both" (0.439 vs 0.460: the capacity goes to the output error, not measured
            per program yet), so it is not on by default.
    """

    ce_steps: int = 100
    steps: int = 150
    refit_steps: int = 100
    lr: float = 0.1
    token_l1: float = 2e-4
    max_terms: int = 8
    max_tokens: int = 24
    min_token_count: int = 4
    max_token_groups: int = 3
    min_importance: float = 0.002
    query_features: tuple[str, ...] = ("sink", "self", "prev1", "prev2", "same_word", "same_sentence")
    max_query_tokens: int = 24
    max_query_groups: int = 2
    max_total_terms: int = 12
    objective: str = "iou"
    profile_length: int = 0


#: Pair features a relative-position profile makes redundant (distance indicators).
PROFILE_COVERS = ("self", "prev1", "prev2", "prev3", "prev4")
#: What a fit can minimise (see the module docstring).
OBJECTIVES = ("iou", "faithful", "both")


@dataclass
class HeadModel:
    """The fitted log-linear model of one head.

    Attributes:
        head: "layer.head".
        weights: feature name -> weight (kept features only).
        token_groups: list of (weight, token strings) key-bias sets.
        query_groups: list of (feature name, weight, token strings): the feature's
            weight grows by `weight` when the query token is in the set.
        fit_iou: IoU of the (unrounded) model on the fit windows, as fitted.
        profile: weight of the key at distance d = 0, 1, .. back (empty: no profile).
    """

    head: str
    weights: dict[str, float]
    token_groups: list[tuple[float, tuple[str, ...]]] = field(default_factory=list)
    query_groups: list[tuple[str, float, tuple[str, ...]]] = field(default_factory=list)
    fit_iou: float = 0.0
    profile: tuple[float, ...] = ()


def _iou_rows(attn: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Mean over windows and rows of the clipped IoU, per head: attn/logits [H, W, n, n] -> [H]."""
    p = torch.softmax(logits, dim=-1).clamp(EPS, 1.0)
    a = attn.clamp(EPS, 1.0)
    mn = torch.minimum(a, p).sum(-1)
    sum_max = a.sum(-1) + p.sum(-1) - mn
    return (mn / sum_max).mean(dim=(1, 2))


def output_error(attn: torch.Tensor, p: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Relative output error per head: attn/p [H, W, R, n], values [H, W, n, d] -> [H]."""
    target = torch.einsum("hwqk,hwkd->hwqd", attn, values)
    diff = torch.einsum("hwqk,hwkd->hwqd", p - attn, values)
    return diff.pow(2).sum(dim=(1, 2, 3)) / target.pow(2).sum(dim=(1, 2, 3)).clamp_min(1e-30)


def _objective(kind: str, attn: torch.Tensor, logits: torch.Tensor, values: torch.Tensor | None) -> torch.Tensor:
    """Per-head loss [H] to minimise: 1 - IoU, the output error, or their sum."""
    if kind == "iou":
        return 1.0 - _iou_rows(attn, logits)
    error = output_error(attn, torch.softmax(logits, dim=-1), values)
    return error if kind == "faithful" else error + (1.0 - _iou_rows(attn, logits))


def _causal_bias(rows: np.ndarray, n: int) -> torch.Tensor:
    """-inf on keys after each row's query position: rows int [W, R] -> [W, R, n]."""
    mask = torch.arange(n)[None, None, :] > torch.tensor(np.asarray(rows, dtype=np.int64))[:, :, None]
    return torch.zeros(mask.shape).masked_fill(mask, float("-inf"))


def _adam(params: list[torch.Tensor], loss_fn, steps: int, lr: float) -> None:
    opt = torch.optim.Adam(params, lr=lr)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        opt.step()


def fit_heads(
    attn: np.ndarray,
    feats: np.ndarray,
    feature_names: tuple[str, ...],
    key_token: np.ndarray,
    token_strings: list[str],
    head_names: list[str],
    config: FitConfig | None = None,
    rows: np.ndarray | None = None,
    values: np.ndarray | None = None,
) -> list[HeadModel]:
    """Fit one log-linear model per head (see the module docstring).

    Args:
        attn: float [W, H, R, n] attention of the heads on the fit windows
            (R query rows per window: all n, or a sample given by `rows`).
        feats: float32 [W, R, n, F] from `offline_features.feature_tensor` (same rows).
        feature_names: the F names.
        key_token: int [W, n] compact token index of each position (into token_strings).
        token_strings: the string of each compact index.
        head_names: H names "layer.head".
        config: fit knobs.
        rows: int [W, R] query position of each row; default every position.
            IoU is a mean over rows, so a row sample gives an unbiased objective.
        values: float [W, H, n, d] the heads' value vectors on the fit windows
            (needed by the "faithful" and "both" objectives).

    Raises:
        ValueError: an unknown objective, or one that needs `values` without them.

    Returns:
        One `HeadModel` per head, in order.
    """
    cfg = config or FitConfig()
    if cfg.objective not in OBJECTIVES:
        raise ValueError(f"objective {cfg.objective!r}: choose one of {', '.join(OBJECTIVES)}")
    if cfg.objective != "iou" and values is None:
        raise ValueError(f"objective {cfg.objective!r} needs the heads' value vectors")
    v = None if values is None else torch.from_numpy(
        np.ascontiguousarray(np.asarray(values, dtype=np.float32).transpose(1, 0, 2, 3)))
    n_win, n_heads, n_rows, n = attn.shape
    n_feat = feats.shape[-1]
    a = torch.from_numpy(np.ascontiguousarray(np.asarray(attn, dtype=np.float32).transpose(1, 0, 2, 3)))
    f = torch.from_numpy(np.ascontiguousarray(feats, dtype=np.float32))
    if rows is None:
        rows = np.broadcast_to(np.arange(n), (n_win, n))
    causal = _causal_bias(rows, n)
    ktok = torch.from_numpy(np.asarray(key_token, dtype=np.int64))
    qtok = torch.from_numpy(np.take_along_axis(np.asarray(key_token, dtype=np.int64), np.asarray(rows), axis=1))
    n_tok = len(token_strings)
    qf_index = [feature_names.index(name) for name in cfg.query_features if name in feature_names]
    fq = f[..., qf_index]  # [W, R, n, J]
    n_qf = len(qf_index)

    theta = torch.zeros(n_heads, n_feat, requires_grad=True)
    bias = torch.zeros(n_heads, n_tok, requires_grad=True)
    qbias = torch.zeros(n_heads, n_qf, n_tok, requires_grad=True)
    n_prof = max(0, int(cfg.profile_length))
    prof = torch.zeros(n_heads, n_prof, requires_grad=True)
    pair_mask = torch.ones(n_feat)  # features the profile covers are left out (weight 0)
    if n_prof:
        pair_mask[[feature_names.index(x) for x in PROFILE_COVERS if x in feature_names]] = 0.0
        back = np.asarray(rows)[:, :, None] - np.arange(n)[None, None, :]  # [W, R, n] distance back
        distance_slot = torch.from_numpy(np.where((back >= 0) & (back < n_prof), back, n_prof).astype(np.int64))

    def profile_term(table: torch.Tensor) -> torch.Tensor:
        """table[h, q - k] for keys within the profile, 0 beyond -> [H, W, R, n]."""
        if not n_prof:
            return torch.zeros(())
        return torch.cat([table, torch.zeros(n_heads, 1)], dim=1)[:, distance_slot]

    def query_term(table: torch.Tensor) -> torch.Tensor:
        """sum_j table[h, j, tok(q)] * feature_j(q, k) -> [H, W, R, n]."""
        if n_qf == 0:
            return torch.zeros(())
        return torch.einsum("wqkj,hjwq->hwqk", fq, table[:, :, qtok])

    def logits_full() -> torch.Tensor:
        pair = torch.einsum("wqkf,hf->hwqk", f, theta * pair_mask) + query_term(qbias) + profile_term(prof)
        return pair + bias[:, ktok][:, :, None, :] + causal

    def penalty() -> torch.Tensor:
        return cfg.token_l1 * (bias.abs().sum() + qbias.abs().sum())

    def loss_full() -> torch.Tensor:
        return _objective(cfg.objective, a, logits_full(), v).sum() + penalty()

    def loss_ce() -> torch.Tensor:
        log_p = torch.log_softmax(logits_full(), dim=-1).clamp(min=-1e4)
        return -(a * log_p).sum(-1).mean() * n_heads + penalty()

    if cfg.ce_steps:
        _adam([theta, bias, qbias, prof], loss_ce, cfg.ce_steps, 2 * cfg.lr)
    _adam([theta, bias, qbias, prof], loss_full, cfg.steps, cfg.lr)

    # ---- selection: a feature's importance is the objective lost when its weight is zeroed ----
    th = (theta * pair_mask).detach()
    with torch.no_grad():
        base = _objective(cfg.objective, a, logits_full(), v)
        importance = np.zeros((n_heads, n_feat))
        for i in range(n_feat):
            saved = theta[:, i].clone()
            theta[:, i] = 0.0
            importance[:, i] = (_objective(cfg.objective, a, logits_full(), v) - base).numpy()
            theta[:, i] = saved
        q_importance = np.zeros((n_heads, n_qf))
        for j in range(n_qf):
            saved = qbias[:, j].clone()
            qbias[:, j] = 0.0
            q_importance[:, j] = (_objective(cfg.objective, a, logits_full(), v) - base).numpy()
            qbias[:, j] = saved
        p_importance = np.zeros(n_heads)
        if n_prof:
            saved = prof.clone()
            prof.zero_()
            p_importance = (_objective(cfg.objective, a, logits_full(), v) - base).numpy()
            prof.copy_(saved)
    # windows containing each token: a bias learned from one window is an anecdote, not a pattern
    per_window = np.unique(key_token + n_tok * np.arange(n_win)[:, None])
    counts = np.bincount(per_window % n_tok, minlength=n_tok)
    b = bias.detach().numpy()
    keep = np.zeros((n_heads, n_feat), dtype=bool)
    groups: list[list[tuple[float, np.ndarray]]] = []
    for h in range(n_heads):
        order = np.argsort(-importance[h])[:cfg.max_terms]
        keep[h, order[importance[h, order] >= cfg.min_importance]] = True
        strength = np.abs(b[h]) * np.sqrt(counts)
        top = [t for t in np.argsort(-strength)[:cfg.max_tokens]
               if abs(b[h, t]) >= 0.25 and counts[t] >= cfg.min_token_count]
        groups.append(_quantise(b[h], top, cfg.max_token_groups))
    qb = qbias.detach().numpy()
    q_groups: list[list[tuple[int, float, np.ndarray]]] = []  # per head: (query feature j, value, tokens)
    for h in range(n_heads):
        hq = []
        for j in range(n_qf):
            if q_importance[h, j] < cfg.min_importance:
                continue
            strength = np.abs(qb[h, j]) * np.sqrt(counts)
            top = [t for t in np.argsort(-strength)[:cfg.max_query_tokens]
                   if abs(qb[h, j, t]) >= 0.25 and counts[t] >= cfg.min_token_count]
            hq.extend((j, value, tokens) for value, tokens in _quantise(qb[h, j], top, cfg.max_query_groups))
        q_groups.append(hq)

    # ---- refit of kept terms ------------------------------------------------------------------
    n_groups = max((len(g) for g in groups), default=0)
    mask = torch.from_numpy(keep.astype(np.float32))
    theta2 = (th * mask).clone().requires_grad_(True)
    member = torch.zeros(n_heads, max(n_groups, 1), n_win, n)
    coef0 = torch.zeros(n_heads, max(n_groups, 1))
    for h, hg in enumerate(groups):
        for g, (value, tokens) in enumerate(hg):
            member[h, g] = torch.from_numpy(np.isin(key_token, tokens).astype(np.float32))
            coef0[h, g] = value
    coef = coef0.clone().requires_grad_(True)
    # query groups: slot s of head h is (feature j, tokens); table[h, j, tok] = qcoef[h, s] for tokens in it
    n_slots = max((len(g) for g in q_groups), default=0)
    q_assign = torch.zeros(n_heads, max(n_slots, 1), n_qf, n_tok)
    qcoef0 = torch.zeros(n_heads, max(n_slots, 1))
    for h, hq in enumerate(q_groups):
        for slot, (j, value, tokens) in enumerate(hq):
            q_assign[h, slot, j, torch.from_numpy(np.asarray(tokens, dtype=np.int64))] = 1.0
            qcoef0[h, slot] = value
    qcoef = qcoef0.clone().requires_grad_(True)

    prof2 = prof.detach().clone().requires_grad_(True)
    pmask = torch.from_numpy((p_importance >= cfg.min_importance).astype(np.float32))[:, None]  # [H, 1]
    gmask = torch.zeros(n_heads, max(n_groups, 1))  # token group g of head h is kept
    smask = torch.zeros(n_heads, max(n_slots, 1))  # query slot s of head h is kept
    for h in range(n_heads):
        gmask[h, :len(groups[h])] = 1.0
        smask[h, :len(q_groups[h])] = 1.0

    def logits_kept() -> torch.Tensor:
        pair = torch.einsum("wqkf,hf->hwqk", f, theta2 * mask)
        if n_slots:
            pair = pair + query_term(torch.einsum("hsjt,hs->hjt", q_assign, qcoef * smask))
        tok = torch.einsum("hgwk,hg->hwk", member, coef * gmask)
        return pair + profile_term(prof2 * pmask) + tok[:, :, None, :] + causal

    def refit(steps: int) -> None:
        if steps:
            _adam([theta2, coef, qcoef, prof2], lambda: _objective(cfg.objective, a, logits_kept(), v).sum(),
                  steps, cfg.lr / 2)

    refit(cfg.refit_steps)
    if cfg.max_total_terms and _prune_to_budget(cfg.max_total_terms, lambda: _objective(
            cfg.objective, a, logits_kept(), v), [mask, gmask, smask, pmask]):
        refit(cfg.refit_steps)
    keep = mask.numpy().astype(bool)
    kept_groups = gmask.numpy().astype(bool)
    kept_slots = smask.numpy().astype(bool)
    with torch.no_grad():
        iou = _iou_rows(a, logits_kept()).numpy()
    th2 = (theta2 * mask).detach().numpy()
    cf = coef.detach().numpy()
    qcf = qcoef.detach().numpy()
    pf = (prof2 * pmask).detach().numpy()
    models = []
    for h, name in enumerate(head_names):
        weights = {feature_names[i]: float(th2[h, i]) for i in np.flatnonzero(keep[h])}
        token_groups = [(float(cf[h, g]), tuple(token_strings[t] for t in tokens))
                        for g, (_, tokens) in enumerate(groups[h]) if kept_groups[h, g]]
        query_groups = [(feature_names[qf_index[j]], float(qcf[h, slot]), tuple(token_strings[t] for t in tokens))
                        for slot, (j, _, tokens) in enumerate(q_groups[h]) if kept_slots[h, slot]]
        profile = tuple(float(x) for x in pf[h]) if n_prof and pmask[h, 0] else ()
        models.append(HeadModel(name, weights, token_groups, query_groups, float(iou[h]), profile))
    return models


def _prune_to_budget(budget: int, objective, masks: list[torch.Tensor]) -> bool:
    """Zero, per head, the least important terms beyond `budget` (in place); whether any was dropped.

    `masks` are [H, T_i] 0/1 tensors of the kept terms of each kind; `objective()`
    gives the per-head loss [H] under the current masks. A term's importance is
    the loss it adds back when zeroed alone; the `budget` most important stay.
    """
    with torch.no_grad():
        base = objective()
        scored: list[list[tuple[float, int, int]]] = [[] for _ in range(base.shape[0])]
        for kind, m in enumerate(masks):
            for t in range(m.shape[1]):
                heads = torch.nonzero(m[:, t]).flatten().tolist()
                if not heads:
                    continue
                saved = m[:, t].clone()
                m[:, t] = 0.0
                lost = (objective() - base).numpy()
                m[:, t] = saved
                for h in heads:
                    scored[h].append((float(lost[h]), kind, t))
        dropped = False
        for h, terms in enumerate(scored):
            for _, kind, t in sorted(terms, reverse=True)[budget:]:
                masks[kind][h, t] = 0.0
                dropped = True
    return dropped


def _quantise(values: np.ndarray, chosen: list[int], n_groups: int) -> list[tuple[float, np.ndarray]]:
    """Split chosen token indices into <= n_groups sets of similar bias (1-D k-means by sorting)."""
    if not chosen or n_groups < 1:
        return []
    chosen = sorted(chosen, key=lambda t: values[t])
    vals = np.array([values[t] for t in chosen])
    if len(chosen) <= n_groups:
        return [(float(v), np.array([t])) for v, t in zip(vals, chosen)]
    # split at the largest gaps between sorted values
    gaps = np.argsort(-np.diff(vals))[:n_groups - 1]
    cuts = sorted(int(g) + 1 for g in gaps)
    out = []
    for part in np.split(np.arange(len(chosen)), cuts):
        out.append((float(vals[part].mean()), np.array([chosen[i] for i in part])))
    return out
