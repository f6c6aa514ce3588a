"""A synthetic study out dir of any size (no model run), laid out as `attnc study` writes it.

Used by the explorer tests for SmolLM2's grid (30 layers x 9 heads) without
running SmolLM2: the library is compiled from real programs, the attention
store holds attention made from those programs plus noise, and the report
files (results.json, heads.csv, scores.csv) and cache records have the
study's formats (heads.csv through the report's own writer).
"""

from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np

from attnc.compiler.library_build import build_library
from attnc.runtime.extract import STORE_FORMAT, STORE_FORMAT_VERSION
from attnc.runtime.heads import head_name
from attnc.runtime.library import load_library
from attnc.runtime.models import tiny_tokenizer
from attnc.runtime.replacement import FITS_FORMAT
from attnc.runtime.store import write_json_atomic, write_shard
from attnc.study.iou import iou_reference_batch
from attnc.study.report import _write_heads_csv
from attnc.study.stage_cache import RECORD_NAME
from attnc.window import Vocab

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
NAMES = ("previous_token", "first_token", "uniform_causal", "self_token")
TEXT = ("Tom had a red ball. He threw the ball to his dog, and the dog ran after it. "
        "\"Good dog!\" said Tom. The dog was happy. ") * 40
KEYS = {stage: f"{stage[:4]}000000000000"[:16] for stage in ("compile", "extract", "score", "fit", "order")}


def _stage(cache: Path, stage: str, record: dict) -> Path:
    directory = cache / f"{stage}-{KEYS[stage]}"
    directory.mkdir(parents=True, exist_ok=True)
    write_json_atomic(directory / RECORD_NAME, record)
    return directory


def synthetic_study(out: Path, *, n_layers: int = 30, n_heads: int = 9, window: int = 128, n_windows: int = 6,
                    qa: bool = True, baselines: bool = True, seed: int = 0, extra_programs: tuple = ()) -> Vocab:
    """Write a study of n_layers x n_heads heads into `out`; returns the vocab its library needs.

    `extra_programs`: more program files (or folders) compiled into the library, unscored (for page sizes).
    """
    rng = np.random.default_rng(seed)
    tokenizer = tiny_tokenizer()
    vocab = Vocab.from_tokenizer(tokenizer)
    stream = np.asarray(tokenizer(TEXT)["input_ids"], dtype=np.int64)
    ids = np.stack([stream[i * window:(i + 1) * window] for i in range(n_windows)])
    cache = out / "cache"
    lib = _stage(cache, "compile", {"n_programs": len(NAMES), "failed": {}}) / "lib"
    build_library([*(PROGRAMS / f"{n}.py" for n in NAMES), *extra_programs], lib, backend="numpy")
    matrices = load_library(lib, vocab=vocab).matrices(list(NAMES), ids)

    heads = [head_name(l, h) for l in range(n_layers) for h in range(n_heads)]
    causal = np.tril(np.ones((window, window)))
    attn = np.empty((n_windows, len(heads), window, window), dtype=np.float32)
    for k, head in enumerate(heads):
        noise = rng.random((n_windows, window, window)) ** 6 * causal
        noise /= noise.sum(-1, keepdims=True)
        share = rng.uniform(0.3, 0.9)
        attn[:, k] = share * matrices[NAMES[k % len(NAMES)]] + (1 - share) * noise
    heldout = list(range(1, n_windows, 2))
    store = _stage(cache, "extract", {"n_windows": n_windows}) / "store"
    store.mkdir()
    write_shard(store, 0, attn, np.arange(n_windows), ids)
    write_json_atomic(store / "meta.json", {
        "format": STORE_FORMAT, "format_version": STORE_FORMAT_VERSION, "model": "synthetic",
        "tokenizer": vocab.name, "window": window, "heads": heads, "dtype": "float16", "n_windows": n_windows,
        "window_indices": list(range(n_windows)), "shard_size": n_windows, "n_shards": 1,
        "windows": {"heldout_indices": heldout, "n_windows": n_windows}})

    fit_rows = [i for i in range(n_windows) if i not in heldout]
    scores = {name: {} for name in NAMES}
    fits = {}
    for k, head in enumerate(heads):
        for name in NAMES:
            per_window = iou_reference_batch(attn[:, k].astype(np.float64), matrices[name])
            scores[name][head] = (float(per_window[fit_rows].mean()), float(per_window[heldout].mean()))
        best = max(NAMES, key=lambda n: scores[n][head][1])
        other = NAMES[(NAMES.index(best) + 1) % len(NAMES)]
        fits[head] = {"program": best, "iou_fit": scores[best][head][0], "iou_heldout": scores[best][head][1],
                      "mixture": {"programs": [best, other], "weights": [0.8, 0.2],
                                  "iou_fit": scores[best][head][0] + 0.01, "iou_heldout": scores[best][head][1] + 0.01}}
    fit_dir = _stage(cache, "fit", {"selected_programs": list(NAMES), "selected_value": 0.5, "full_value": 0.5})
    write_json_atomic(fit_dir / "fits.json", {"format": FITS_FORMAT, "model": "synthetic", "window": window,
                                              "n_windows_fit": len(fit_rows), "n_windows_heldout": len(heldout),
                                              "heads": fits})
    impact = {head: float(rng.normal(0, 0.01)) for head in heads}
    order = {"order": sorted(heads, key=lambda h: impact[h]), "criterion": "measured_loss_impact", "values": impact}
    _stage(cache, "order", order)
    _stage(cache, "score", {"failed": {}, "n_programs": len(NAMES)})

    out.mkdir(parents=True, exist_ok=True)
    _write_heads_csv(types.SimpleNamespace(fits={"heads": fits}, order=order), out / "heads.csv")
    with open(out / "scores.csv", "w") as f:
        f.write("program,head,iou_fit,iou_heldout\n")
        f.writelines(f"{n},{h},{v[0]:.6f},{v[1]:.6f}\n" for n in NAMES for h, v in scores[n].items())
    fractions = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)
    sweep = [{"fraction": f, "n_heads_replaced": round(f * len(heads)), "ppl": 20.0 * (1 + 3 * f * f),
              "ppl_increase_pct": 300.0 * f * f, "tokens_evaluated": 381, "n_windows": 3, "fallbacks": 0}
             for f in fractions]
    results = {
        "model": "synthetic", "model_info": {"name": "synthetic", "n_layers": n_layers, "n_heads": n_heads},
        "corpus": "synthetic.txt", "corpus_sha256": "0" * 64, "window": window, "window_mode": "fixed",
        "n_windows_fit": len(fit_rows), "n_windows_heldout": len(heldout), "n_programs": len(NAMES),
        "n_programs_selected": len(NAMES), "n_heads": len(heads),
        "mean_best_iou_heldout": float(np.mean([f["iou_heldout"] for f in fits.values()])),
        "mean_best_mixture_iou_heldout": float(np.mean([f["mixture"]["iou_heldout"] for f in fits.values()])),
        "replacement_uses": "mixture", "order": "measured_loss_impact", "ppl_baseline": 20.0, "sweep": sweep,
        "tokens_evaluated": 381, "qa": {}, "stage_keys": dict(KEYS), "plots": [],
    }
    if qa:
        results["qa"] = {"piqa": {"n": 50, "acc_baseline": 0.62, "acc_replaced_25": 0.58, "acc_norm_baseline": 0.64,
                                  "acc_norm_replaced_25": 0.6, "n_heads_replaced_25": round(0.25 * len(heads))}}
    if baselines:
        results["baselines"] = {
            "programs": [{k: p[k] for k in ("fraction", "ppl", "ppl_increase_pct")} for p in sweep],
            "content_free": [{"fraction": f, "ppl": 20.0 * (1 + 6 * f), "ppl_increase_pct": 600.0 * f} for f in fractions],
            "mean_ablation": [{"fraction": f, "ppl": 20.0 * (1 + 9 * f), "ppl_increase_pct": 900.0 * f} for f in fractions],
        }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return vocab
