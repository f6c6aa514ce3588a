"""Loss-faithful tuning: fit the constants of replaced heads' programs to the model's own output.

The heads that will be replaced together (say the cheapest 25%) are tuned
jointly, because their errors compound across layers: with all of them
replaced, the mixture weights of every head (the constants this program family
exposes) are fitted by autograd so that the model's next-token distribution
stays close to the stock model's, i.e. they minimise

    KL(stock || replaced) = mean over predicted tokens of sum_v p_stock(v) log(p_stock(v) / p_replaced(v))

on fit windows. Gradients flow through the gated attention of
`attnc.study.attribution` (the model's weights are frozen; each head's output
is sum_k w_k P_k V_h, w = softmax(theta_h)). By default the program matrices
P_k are computed once per window by the compiled library and stay fixed, so
the result is the same readable programs with new weights. With
`constants`, chosen programs of a head also have their own numeric constants
tuned (attnc.study.program_constants: the program's torch kernel with its
fitted literals as parameters, one private copy per head); the result is then
new DSL source per (head, program), written back with rounded constants, and
the objective after tuning is measured with the rounded values.

Bad input is refused before any work (no windows, a head named twice, a head
with no candidate); a NaN loss stops the run with the last good weights kept
and the head(s) whose weights went bad named.
"""

from __future__ import annotations

import math
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import torch

from attnc.runtime.heads import Head, head_name
from attnc.runtime.replacement import Mixture, ReplacementMap
from attnc.output_rule import OutputContractError
from attnc.study.attribution import GatedModel
from attnc.study.head_outputs import MIN_WEIGHT
from attnc.study.program_constants import ParametricProgram


class TuneError(ValueError):
    """Tuning input that cannot work (found before any forward pass)."""


@dataclass
class TuneResult:
    """Tuned mixtures and how the objective moved.

    Attributes:
        mixtures: the tuned heads' mixtures (weights < MIN_WEIGHT dropped, renormalised).
        start: the mixtures tuning started from.
        kl_start, kl_end: mean KL(stock || replaced) per predicted token (nats) on the
            tuning windows, all tuned heads replaced, before and after.
        history: the objective on each step's batch.
        untunable: heads left as they were (a single candidate: nothing to fit).
        stopped: why tuning stopped early (NaN loss), or None.
        constants: (head, program) -> its tuned constants (rounded as written back),
            for the programs whose constants were tuned; `mixtures` still name the
            original programs (see `tuned_program_sources` for the new ones).
        constants_start: the same keys -> the constants in the original source.
    """

    mixtures: dict[Head, Mixture]
    start: dict[Head, Mixture]
    kl_start: float
    kl_end: float
    history: list[float] = field(default_factory=list)
    untunable: list[str] = field(default_factory=list)
    stopped: str | None = None
    n_windows: int = 0
    tokens: int = 0
    seconds: float = 0.0
    constants: dict[tuple[Head, str], list[float]] = field(default_factory=dict)
    constants_start: dict[tuple[Head, str], list[float]] = field(default_factory=dict)

    def to_json(self) -> dict:
        def mixtures(m: Mapping[Head, Mixture]) -> dict:
            return {head_name(*k): [[n, w] for n, w in v] for k, v in m.items()}

        return {"objective": "kl", "kl_start": self.kl_start, "kl_end": self.kl_end,
                "history": self.history, "untunable": self.untunable, "stopped": self.stopped,
                "n_windows": self.n_windows, "tokens": self.tokens, "seconds": self.seconds,
                "start": mixtures(self.start), "tuned": mixtures(self.mixtures),
                "constants": [{"head": head_name(*key), "program": name, "start": self.constants_start[(key, name)],
                               "tuned": values} for (key, name), values in self.constants.items()]}


def _check(start: ReplacementMap, candidates: Mapping[Head, Sequence[str]], ids: np.ndarray) -> None:
    if ids.ndim != 2 or len(ids) == 0 or ids.shape[1] < 2:
        raise TuneError(f"tuning needs fit windows of >= 2 tokens; got ids of shape {ids.shape}")
    if len(start) == 0:
        raise TuneError("no heads to tune")
    for key, names in candidates.items():
        if key not in start.heads:
            raise TuneError(f"candidates name head {head_name(*key)}, which is not being tuned")
        if len(set(names)) != len(names):
            raise TuneError(f"head {head_name(*key)}: a candidate program is named twice")


def _kl(logits: torch.Tensor, stock_logp: torch.Tensor) -> torch.Tensor:
    """Summed KL(stock || replaced) over predicted positions: logits/stock_logp [B, n, V]."""
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    target = stock_logp[:, :-1]
    return (target.exp() * (target - logp)).sum()


def tune_mixtures(
    loaded,
    source,
    start: ReplacementMap,
    ids: np.ndarray,
    *,
    candidates: Mapping[Head, Sequence[str]] | None = None,
    constants: Mapping[Head, Sequence[ParametricProgram]] | None = None,
    steps: int = 30,
    lr: float = 0.1,
    constants_lr: float = 0.03,
    batch_size: int = 4,
    progress: bool = False,
) -> TuneResult:
    """Tune the mixture weights of every head in `start` jointly, on windows `ids`.

    Args:
        loaded: a LoadedModel.
        source: a ProgramSource with `matrices(names, ids)` for every program named.
        start: the heads to tune (replaced together) and the mixtures to start from.
        ids: int [N, n] fit windows (never held-out ones: the result is reported on those).
        candidates: per head, programs to mix (the start mixture's are always included);
            default the start mixture's own programs.
        constants: per head, programs (in its pool) whose numeric constants are tuned too,
            a private copy for that head (attnc.study.program_constants.ParametricProgram).
        steps: Adam steps (one batch of `batch_size` windows each, cycling).
        lr: Adam learning rate on the weights' logits.
        constants_lr: Adam learning rate on program constants.

    Raises:
        TuneError: no windows or heads, a head named twice, candidates for an unknown head.
    """
    started = time.perf_counter()
    ids = np.asarray(ids, dtype=np.int64)
    candidates = dict(candidates or {})
    _check(start, candidates, ids)
    heads = list(start.heads)
    pools = {key: list(dict.fromkeys([n for n, _ in start.heads[key]] + list(candidates.get(key, ()))))
             for key in heads}
    programs = {(key, p.name): p for key, ps in (constants or {}).items() for p in ps}
    for key, name in programs:
        if key not in start.heads or name not in pools[key]:
            raise TuneError(f"constants of {name} are to be tuned for head {head_name(*key)}, "
                            "which does not mix it")
    untunable = [head_name(*key) for key in heads
                 if len(pools[key]) < 2 and not any(k == key for k, _ in programs)]
    names = list(dict.fromkeys(n for key in heads for n in pools[key]))
    device = next(loaded.model.parameters()).device
    got = source.matrices(names, ids)
    matrices = {n: torch.as_tensor(np.asarray(got[n]), dtype=torch.float32, device=device) for n in names}
    del got
    bad = [n for n, m in matrices.items() if not torch.isfinite(m).all()]
    if bad:
        raise TuneError(f"program(s) {', '.join(bad)} gave non-finite matrices on the tuning windows")
    def start_logits(key: Head) -> torch.Tensor:
        """The start mixture's weights as logits over the head's pool (absent programs at MIN_WEIGHT)."""
        weight = dict(start.heads[key])
        return torch.tensor([math.log(max(weight.get(n, 0.0), MIN_WEIGHT)) for n in pools[key]],
                            dtype=torch.float32, device=device)

    theta = [start_logits(key).requires_grad_(len(pools[key]) > 1) for key in heads]
    phi = {pk: torch.tensor(p.initial, dtype=torch.float64, requires_grad=True) for pk, p in programs.items()}
    batches = [np.arange(s, min(s + batch_size, len(ids))) for s in range(0, len(ids), batch_size)]
    gates = torch.ones(len(heads), device=device)
    layer_heads: dict[int, dict[int, tuple[int, int]]] = {}
    for g, (layer, head) in enumerate(heads):
        layer_heads.setdefault(layer, {})[head] = (g, g)

    def matrix(key: Head, name: str, b: int, values: Mapping) -> torch.Tensor:
        rows = batches[b]
        if (key, name) not in programs:
            return matrices[name][rows]
        try:
            return programs[(key, name)].matrices(ids[rows], values[(key, name)], key=b).to(device, torch.float32)
        except OutputContractError as exc:
            raise _BadConstants(f"program {name} of head {head_name(*key)}: {exc}") from exc

    def payload(b: int, params: list[torch.Tensor], values: Mapping) -> dict:
        mixed = [sum(w * matrix(key, n, b, values) for w, n in zip(torch.softmax(t, 0), pools[key]))
                 for t, key in zip(params, heads)]
        return {"heads": layer_heads, "gates": gates, "matrices": mixed}

    tokens = int(ids.shape[0] * (ids.shape[1] - 1))
    with GatedModel(loaded, start) as gated:
        with torch.no_grad():
            none = {"heads": {}, "gates": gates, "matrices": []}
            stock = [torch.log_softmax(gated.logits(ids[rows], none).float(), dim=-1) for rows in batches]

        def total_kl(params: list[torch.Tensor], values: Mapping) -> float:
            with torch.no_grad():
                try:
                    return sum(float(_kl(gated.logits(ids[rows], payload(b, params, values)), stock[b]))
                               for b, rows in enumerate(batches)) / tokens
                except _BadConstants:
                    return math.inf

        start_values = {pk: t.detach().clone() for pk, t in phi.items()}
        kl_start = total_kl(theta, start_values)
        tunable = [t for t in theta if t.requires_grad]
        history: list[float] = []
        stopped = None
        if (tunable or phi) and steps > 0:
            groups = [{"params": tunable, "lr": lr}] if tunable else []
            if phi:
                groups.append({"params": list(phi.values()), "lr": constants_lr})
            optimizer = torch.optim.Adam(groups)
            good = [t.detach().clone() for t in theta]
            good_values = {pk: t.detach().clone() for pk, t in phi.items()}
            loop = range(steps)
            if progress:
                from tqdm import tqdm

                loop = tqdm(loop, desc="tune", unit="step", file=sys.stderr)
            for step in loop:
                b = step % len(batches)
                rows = batches[b]
                optimizer.zero_grad(set_to_none=True)
                try:
                    loss = _kl(gated.logits(ids[rows], payload(b, theta, phi), grad=True), stock[b]) / (
                        len(rows) * (ids.shape[1] - 1))
                except _BadConstants as exc:
                    stopped = f"step {step}: {exc}; kept the last constants with a finite loss"
                    break
                if not torch.isfinite(loss):
                    bad = [head_name(*key) for key, t in zip(heads, theta) if not torch.isfinite(t).all()]
                    stopped = (f"step {step}: loss is {float(loss.detach())}"
                               + (f" (non-finite weights for head(s) {', '.join(bad)})" if bad else "")
                               + "; kept the last weights with a finite loss")
                    break
                loss.backward()
                bad = [head_name(*key) for key, t in zip(heads, theta)
                       if t.grad is not None and not torch.isfinite(t.grad).all()]
                bad += [f"{head_name(*key)} ({name})" for (key, name), t in phi.items()
                        if t.grad is not None and not torch.isfinite(t.grad).all()]
                if bad:
                    stopped = f"step {step}: non-finite gradient for head(s) {', '.join(bad)}; kept the last good weights"
                    break
                good = [t.detach().clone() for t in theta]  # these weights gave a finite loss
                good_values = {pk: t.detach().clone() for pk, t in phi.items()}
                optimizer.step()
                history.append(float(loss.detach()))
            theta = good if stopped else [t.detach() for t in theta]
            final = good_values if stopped else {pk: t.detach() for pk, t in phi.items()}
        else:
            final = start_values
        # what the written programs compute: constants rounded as source_with writes them
        final = {pk: torch.as_tensor(programs[pk].rounded(v.tolist())) for pk, v in final.items()}
        kl_end = total_kl(theta, final)
    if not kl_end <= kl_start:  # never hand back weights that fit worse than the start (or NaN)
        theta = [start_logits(key) for key in heads]
        final = start_values
        kl_end = kl_start
    tuned: dict[Head, Mixture] = {}
    for key, t in zip(heads, theta):
        w = torch.softmax(t.float(), 0).cpu().numpy().astype(np.float64)
        kept = [(n, float(x)) for n, x in zip(pools[key], w) if x >= MIN_WEIGHT]
        total = sum(x for _, x in kept)
        tuned[key] = tuple(sorted(((n, x / total) for n, x in kept), key=lambda item: -item[1]))
    changed = {pk: [float(x) for x in v.tolist()] for pk, v in final.items()
               if not np.array_equal(v.numpy(), programs[pk].initial)}
    return TuneResult(tuned, dict(start.heads), kl_start, kl_end, history, untunable, stopped,
                      int(len(ids)), tokens, round(time.perf_counter() - started, 3), constants=changed,
                      constants_start={pk: [float(x) for x in programs[pk].initial] for pk in changed})


class _BadConstants(RuntimeError):
    """Tuned constants made a program's matrices non-finite."""


def tuned_name(program: str, key: Head) -> str:
    """The name of `program` with constants tuned for head `key` (a repeat tuning replaces the suffix)."""
    base = re.sub(r"_tuned_l\d+_h\d+$", "", program.rsplit(".", 1)[-1].split("~")[0])
    return f"{base}_tuned_l{key[0]}_h{key[1]}"


def tuned_program_sources(result: TuneResult, programs: Mapping[str, ParametricProgram], note: str
                          ) -> tuple[dict[Head, Mixture], dict[str, str]]:
    """The tuned mixtures naming the new programs, and new name -> DSL source.

    Each (head, program) whose constants changed becomes a program of its own,
    `tuned_name(program, head)`, with the constants rounded as tuning measured
    them and `note` (what it was tuned on) in its header.
    """
    sources: dict[str, str] = {}
    renamed: dict[Head, Mixture] = {}
    for key, mixture in result.mixtures.items():
        entries = []
        for name, weight in mixture:
            values = result.constants.get((key, name))
            if values is not None:
                new = tuned_name(name, key)
                sources[new] = programs[name].source_with(
                    values, new, f"{note}\nconstants tuned for head {head_name(*key)} from program {name}; "
                    "figures in the docstring are the original program's")
                name = new
            entries.append((name, weight))
        renamed[key] = tuple(entries)
    return renamed, sources
