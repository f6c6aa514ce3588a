"""The study's report directory: results.json, CSVs, PNG plots and report.md.

`build_results` turns the stages' outputs into the results record (the keys
issue 5 names, plus what a reader needs to judge them: sample sizes, the
ordering criterion, failures); `write_report` writes every file from it.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attnc.runtime.heads import parse_head
from attnc.runtime.store import write_json_atomic
from attnc.study.study_stages import MEASURED_ORDERS, ORDER_CRITERIA

#: The order criteria (as results.json names them) that measure every head they rank.
_MEASURED_ORDER_NAMES = frozenset(ORDER_CRITERIA[name] for name in MEASURED_ORDERS)

#: Shown tokens of the held-out window in the neural-vs-program plots.
PLOT_TOKENS = 32


@dataclass
class StudyContext:
    """Everything the report reads (built by `attnc.study.study_run.run_study`)."""

    config: Any
    loaded: Any
    windows: Any
    library: Any
    store: Any
    table: Any
    fits: dict
    selection: dict
    order: dict
    points: list[dict]
    qa: dict
    compile_record: dict
    score_record: dict
    stage_keys: dict
    baselines: dict | None = None
    faithful: dict | None = None
    tuning: dict | None = None
    #: where the replacing programs come from (the library, plus tuned programs); None: the library
    programs_source: Any = None


#: Fractions at which the programs must beat every baseline (issue 12).
VERDICT_FRACTIONS = (0.1, 0.25)
#: The sweeps results.json's ``baselines`` holds, in this order.
SWEEP_METHODS = ("programs", "content_free", "mean_ablation")


def mixture_iou(fit: dict) -> float:
    """Held-out IoU of a head's best mixture (its best program when it has no mixture)."""
    return float((fit.get("mixture") or fit)["iou_heldout"])


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def build_results(ctx: StudyContext) -> dict:
    """The results record (JSON-ready)."""
    heads = ctx.fits["heads"]
    singles = [h["iou_heldout"] for h in heads.values()]
    mixtures = [mixture_iou(h) for h in heads.values()]
    described = ctx.windows.describe()
    ppl_points = [p for p in ctx.points]
    return {
        "model": ctx.loaded.name,
        "model_info": ctx.loaded.describe(),
        "corpus": str(ctx.config.corpus),
        "corpus_sha256": described["corpus_sha256"],
        "window": ctx.config.window,
        "window_mode": ctx.config.mode,
        "skip_windows": ctx.config.skip_windows,
        "heldout_fraction": ctx.config.heldout_fraction,
        "n_windows_fit": int(ctx.table.n_windows_fit),
        "n_windows_heldout": int(ctx.table.n_windows_heldout),
        "n_programs": len(ctx.table.programs),
        "n_programs_failed": len(ctx.compile_record.get("failed", {})) + len(ctx.score_record.get("failed", {})),
        "n_programs_selected": len(ctx.selection["selected_programs"]),
        "selected_programs": ctx.selection["selected_programs"],
        "selected_mean_iou_heldout": ctx.selection["selected_value"],
        "n_heads": len(heads),
        "mean_best_iou_fit": _mean([h["iou_fit"] for h in heads.values()]),
        "mean_best_iou_heldout": _mean(singles),
        "mean_best_mixture_iou_heldout": _mean(mixtures),
        "max_mixture_programs": ctx.config.mixtures,
        "replacement_uses": ctx.config.use,
        "order": ctx.order["criterion"],
        "order_measured_heads": _n_measured_heads(ctx.order),
        "ppl_baseline": next(p["ppl"] for p in ppl_points if p["n_heads_replaced"] == 0),
        "sweep": [{"fraction": p["fraction"], "n_heads_replaced": p["n_heads_replaced"], "ppl": p["ppl"],
                   "ppl_increase_pct": p["ppl_increase_pct"], "tokens_evaluated": p["tokens_evaluated"],
                   "n_windows": p["n_windows"], "fallbacks": p.get("fallbacks", 0)} for p in ppl_points],
        "tokens_evaluated": ppl_points[0]["tokens_evaluated"],
        "ppl_split": "heldout",
        "qa": ctx.qa,
        "failures": {"compile": ctx.compile_record.get("failed", {}), "score": ctx.score_record.get("failed", {})},
        "stage_keys": ctx.stage_keys,
        **_faithfulness(ctx),
    }


def _faithfulness(ctx: StudyContext) -> dict:
    """results.json's ``baselines`` (per method: its sweep), their orders, the verdict, and the
    faithful fit's and tuning's summaries."""
    methods = ctx.baselines or {"programs": {"order": ctx.order, "points": ctx.points}}

    def sweep(points: list[dict]) -> list[dict]:
        return [{"fraction": p["fraction"], "n_heads_replaced": p["n_heads_replaced"], "ppl": p["ppl"],
                 "ppl_increase_pct": p["ppl_increase_pct"]} for p in sorted(points, key=lambda p: p["fraction"])]

    baselines = {name: sweep(m["points"]) for name, m in methods.items()}
    in_programs_order = {name: sweep(m["points_in_programs_order"]) for name, m in methods.items()
                         if m.get("points_in_programs_order")}
    verdict = []
    by_fraction = {name: {round(p["fraction"], 4): p for p in points} for name, points in baselines.items()}
    by_fraction_programs_order = {name: {round(p["fraction"], 4): p for p in points}
                                  for name, points in in_programs_order.items()}
    for fraction in VERDICT_FRACTIONS:
        ours = by_fraction["programs"].get(fraction)
        if ours is None:
            continue
        for name in baselines:
            if name == "programs" or by_fraction[name].get(fraction) is None:
                continue
            # the baseline at its best: its own order, or the programs' order where that costs less
            options = [("own", by_fraction[name][fraction])]
            if by_fraction_programs_order.get(name, {}).get(fraction) is not None:
                options.append(("programs", by_fraction_programs_order[name][fraction]))
            order_used, theirs = min(options, key=lambda o: o[1]["ppl"])
            ratio = ours["ppl_increase_pct"] / theirs["ppl_increase_pct"] if theirs["ppl_increase_pct"] > 0 else None
            verdict.append({"fraction": fraction, "baseline": name, "programs_increase_pct": ours["ppl_increase_pct"],
                            "baseline_increase_pct": theirs["ppl_increase_pct"], "baseline_order": order_used,
                            "ratio_of_increases": ratio, "programs_better": ours["ppl"] < theirs["ppl"]})
    tuning = None
    if ctx.tuning:  # one joint tuning per tuned set of heads (the first n of the order)
        tuning = [{**{k: r[k] for k in ("kl_start", "kl_end", "n_windows", "tokens", "stopped", "untunable")},
                   "n_heads": len(r["tuned"]), "steps": len(r["history"])}
                  for _, r in sorted(ctx.tuning["by_count"].items(), key=lambda item: int(item[0]))]
    return {"baselines": baselines, "baselines_in_programs_order": in_programs_order,
            "baseline_orders": {name: m["order"]["criterion"] for name, m in methods.items()},
            "baseline_verdict": verdict,
            "programs_beat_baselines": all(v["programs_better"] for v in verdict) if verdict else None,
            "faithful": (ctx.faithful or {}).get("summary"), "tuning": tuning}


def write_report(ctx: StudyContext, results: dict, out: Path) -> None:
    """Write results.json, heads.csv, sweep.csv, scores.csv, the PNG plots, report.md and explorer/ into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    _write_heads_csv(ctx, out / "heads.csv")
    _write_rows(out / "sweep.csv", results["sweep"])
    ctx.table.to_csv(out / "scores.csv")
    if results["qa"]:
        _write_rows(out / "qa.csv", [{"task": task, **{k: v for k, v in row.items()}} for task, row in results["qa"].items()])
    plots = [plot_iou_heatmap(ctx, out / "iou_heatmap.png"), plot_sweep(results, out / "ppl_vs_fraction.png")]
    plots += plot_head_examples(ctx, out)
    results["plots"] = [p.name for p in plots]
    write_json_atomic(out / "results.json", results)
    (out / "report.md").write_text(render_markdown(results), encoding="utf-8")
    from attnc.explore import build_explorer

    build_explorer(out, cache=ctx.config.cache, vocab=ctx.loaded.vocab, library=ctx.library, store=ctx.store)


def _write_rows(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _write_heads_csv(ctx: StudyContext, path: Path) -> None:
    rank = {head: i for i, head in enumerate(ctx.order["order"])}
    rows = []
    for head, fit in ctx.fits["heads"].items():
        layer, index = parse_head(head)
        mixture = fit.get("mixture") or {}
        rows.append({
            "head": head, "layer": layer, "head_index": index, "program": fit["program"],
            "iou_fit": fit["iou_fit"], "iou_heldout": fit["iou_heldout"],
            "mixture": ";".join(f"{p}={w:.4f}" for p, w in zip(mixture.get("programs", []), mixture.get("weights", []))),
            "mixture_iou_fit": mixture.get("iou_fit", ""), "mixture_iou_heldout": mixture.get("iou_heldout", ""),
            "replace_rank": rank.get(head, ""), ctx.order["criterion"]: ctx.order["values"].get(head, ""),
        })
    _write_rows(path, sorted(rows, key=lambda r: (r["layer"], r["head_index"])))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_iou_heatmap(ctx: StudyContext, path: Path) -> Path:
    """Held-out IoU per layer x head: best single program, and best mixture."""
    plt = _pyplot()
    n_layers, n_heads = ctx.loaded.n_layers, ctx.loaded.n_heads
    single = np.full((n_layers, n_heads), np.nan)
    mixed = np.full((n_layers, n_heads), np.nan)
    for head, fit in ctx.fits["heads"].items():
        layer, index = parse_head(head)
        single[layer, index] = fit["iou_heldout"]
        mixed[layer, index] = mixture_iou(fit)
    fig, axes = plt.subplots(1, 2, figsize=(2 * max(3.0, 0.5 * n_heads + 1.5), max(3.0, 0.25 * n_layers + 1.5)),
                             constrained_layout=True)
    for ax, matrix, title in ((axes[0], single, "best program"), (axes[1], mixed, "best mixture")):
        image = ax.imshow(matrix, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto", interpolation="nearest")
        ax.set_title(f"held-out IoU, {title} (mean {np.nanmean(matrix):.3f})", fontsize=10)
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="IoU")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_sweep(results: dict, path: Path) -> Path:
    """Held-out perplexity vs the share of heads replaced, with the baseline."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.0), constrained_layout=True)
    labels = {"programs": "programs", "content_free": "content-free baseline", "mean_ablation": "mean ablation"}
    sweeps = results.get("baselines") or {"programs": results["sweep"]}
    for (name, points), marker in zip(sweeps.items(), "os^"):
        points = sorted(points, key=lambda p: p["fraction"])
        ax.plot([p["fraction"] for p in points], [p["ppl"] for p in points], marker=marker,
                label=labels.get(name, name))
    ax.axhline(results["ppl_baseline"], color="grey", linestyle="--", label=f"stock {results['ppl_baseline']:.2f}")
    ax.set_xlabel("fraction of heads replaced (each method in its own measured order)")
    ax.set_ylabel(f"held-out perplexity ({results['tokens_evaluated']} tokens)")
    ax.set_yscale("log")
    ax.set_title(f"{results['model']}, window {results['window']}, order: {results['order']}", fontsize=10)
    ax.legend()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_head_examples(ctx: StudyContext, out: Path) -> list[Path]:
    """Neural vs program attention on a held-out window for the best, median and worst heads."""
    from attnc.authoring.render import render_png
    from attnc.authoring.show import HeadComparison, token_label
    from attnc.study.iou import iou_reference

    count = ctx.config.plot_heads
    if count <= 0:
        return []
    ranked = sorted(ctx.fits["heads"], key=lambda h: -mixture_iou(ctx.fits["heads"][h]))
    picks = list(dict.fromkeys(ranked[int(round(i * (len(ranked) - 1) / max(count - 1, 1)))] for i in range(count)))
    window_index = int(ctx.windows.heldout_indices[0])
    attn = ctx.store.get(window_index)
    ids = ctx.windows.ids[window_index]
    shown = min(PLOT_TOKENS, len(ids))
    labels = [token_label(ctx.loaded.tokenizer.convert_ids_to_tokens(int(t))) for t in ids[:shown]]
    paths = []
    for head in picks:
        fit = ctx.fits["heads"][head]
        mixture = (fit.get("tuned") or fit.get("faithful") or fit.get("mixture")) if ctx.config.use == "faithful" \
            else fit.get("mixture") if ctx.config.use == "mixture" else None
        names, weights = (mixture["programs"], mixture["weights"]) if mixture else ([fit["program"]], [1.0])
        got = (ctx.programs_source or ctx.library).matrices(names, ids[None])
        program = sum(w * np.asarray(got[n][0], dtype=np.float64) for n, w in zip(names, weights))
        neural = attn[ctx.store.head_position(*parse_head(head))].astype(np.float64)
        label = " + ".join(f"{w:.2f} {n}" for n, w in zip(names, weights)) if len(names) > 1 else names[0]
        comparison = HeadComparison(program=label, model=ctx.loaded.name, head=parse_head(head),
                                    ids=[int(t) for t in ids[:shown]], labels=labels,
                                    program_matrix=program[:shown, :shown], attention=neural[:shown, :shown],
                                    iou=float(iou_reference(neural, program)))
        paths.append(render_png(comparison, out / f"head_{head}.png"))
    return paths


def render_markdown(results: dict) -> str:
    """report.md: the headline table, the sweep, QA, and how each figure was measured."""
    lines = [
        f"# attnc study: {results['model']}",
        "",
        f"Corpus `{results['corpus']}` (sha256 {results['corpus_sha256'][:12]}), {results['window_mode']} windows of "
        f"{results['window']} tokens: {results['n_windows_fit']} fit, {results['n_windows_heldout']} held-out. "
        f"{results['n_programs']} programs scored against {results['n_heads']} heads.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| mean best-fit IoU, fit windows | {results['mean_best_iou_fit']:.3f} |",
        f"| mean best-fit IoU, held-out windows | {results['mean_best_iou_heldout']:.3f} |",
        f"| mean best-mixture IoU (<= {results['max_mixture_programs']} programs), held-out | "
        f"{results['mean_best_mixture_iou_heldout']:.3f} |",
        f"| selected library (held-out IoU within tolerance) | {results['n_programs_selected']} programs, "
        f"{results['selected_mean_iou_heldout']:.3f} |",
        f"| stock perplexity, held-out ({results['tokens_evaluated']} tokens) | {results['ppl_baseline']:.3f} |",
        "",
        f"## Replacement sweep (heads in order of {results['order'].replace('_', ' ')}; "
        f"replaced by their {results['replacement_uses']})",
        "",
        "| fraction | heads replaced | perplexity | increase | tokens |",
        "|---|---|---|---|---|",
    ]
    for p in sorted(results["sweep"], key=lambda p: p["fraction"]):
        lines.append(f"| {p['fraction']:.2f} | {p['n_heads_replaced']} | {p['ppl']:.3f} | "
                     f"{p['ppl_increase_pct']:+.1f}% | {p['tokens_evaluated']} |")
    lines += _baselines_markdown(results)
    if results["qa"]:
        lines += ["", "## QA accuracy (log-likelihood of each answer)", "",
                  "| task | items | baseline | 25% replaced | acc_norm baseline | acc_norm 25% |", "|---|---|---|---|---|---|"]
        for task, row in results["qa"].items():
            lines.append(f"| {task} | {row['n']} | {row['acc_baseline']:.3f} | {row['acc_replaced_25']:.3f} | "
                         f"{row['acc_norm_baseline']:.3f} | {row['acc_norm_replaced_25']:.3f} |")
    lines += ["", "## Stage wall times (s; this run, and when computed)", "", "| stage | this run | computed |",
              "|---|---|---|"]
    for stage, seconds in results["stage_seconds"].items():
        lines.append(f"| {stage} | {seconds:.1f} | {results['stage_computed_seconds'].get(stage, seconds):.1f} |")
    failures = results["failures"]
    if failures["compile"] or failures["score"]:
        lines += ["", "## Programs left out", ""]
        lines += [f"- `{name}` (compile): {message}" for name, message in failures["compile"].items()]
        lines += [f"- `{name}` (score): {message}" for name, message in failures["score"].items()]
    lines += ["", "Plots: " + ", ".join(f"[{p}]({p})" for p in results.get("plots", [])),
              "", "Files: results.json, heads.csv (per head: program, mixture, IoUs, replacement rank), "
              "sweep.csv, scores.csv (program x head IoU), qa.csv; explorer/index.html (browse heads and programs).", ""]
    return "\n".join(lines)


def _baselines_markdown(results: dict) -> list[str]:
    """The programs' sweep beside the baselines', the verdict, and the faithful fit's figures."""
    sweeps = results.get("baselines") or {}
    lines = []
    if len(sweeps) > 1:
        names = list(sweeps)
        lines += ["", "## Programs against baselines (held-out perplexity increase; each method in its own "
                  "measured order)", "", "| fraction | " + " | ".join(n.replace("_", " ") for n in names) + " |",
                  "|---" * (len(names) + 1) + "|"]
        fractions = sorted({p["fraction"] for points in sweeps.values() for p in points})
        by = {n: {p["fraction"]: p for p in points} for n, points in sweeps.items()}
        for f in fractions:
            cells = [f"{by[n][f]['ppl']:.3f} ({by[n][f]['ppl_increase_pct']:+.1f}%)" if f in by[n] else "-" for n in names]
            lines.append(f"| {f:.2f} | " + " | ".join(cells) + " |")
        verdict = results.get("baseline_verdict") or []
        if verdict:
            lines.append("")
            for v in verdict:
                ratio = f"{v['ratio_of_increases']:.2f}" if v["ratio_of_increases"] is not None else "n/a"
                order = " in the programs' order" if v.get("baseline_order") == "programs" else ""
                lines.append(f"- {v['fraction']:.0%} replaced: programs {v['programs_increase_pct']:+.1f}% vs "
                             f"{v['baseline'].replace('_', ' ')}{order} {v['baseline_increase_pct']:+.1f}% "
                             f"(ratio of increases {ratio}): programs {'better' if v['programs_better'] else 'NOT better'}")
            other = results.get("baselines_in_programs_order") or {}
            if other:
                lines += ["", "Each baseline is also swept in the programs' order (its own measured order rests on a "
                          "few impact windows); the verdict takes the better of the two:", ""]
                for n, points in other.items():
                    lines.append(f"- {n.replace('_', ' ')} in the programs' order: " + ", ".join(
                        f"{p['fraction']:.0%} {p['ppl']:.3f} ({p['ppl_increase_pct']:+.1f}%)" for p in points))
            if results.get("programs_beat_baselines") is False:
                lines += ["", "**The programs do not beat every baseline at 10% and 25% replaced.**"]
    faithful, tuning = results.get("faithful"), results.get("tuning")
    if faithful:
        lines += ["", "## Faithful fit (output error: ||(P - A) V_h||^2 / ||A V_h||^2 on fit windows)", "",
                  "| mixture chosen by | mean output error |", "|---|---|",
                  f"| best program (IoU) | {faithful['mean_output_error_best_program']:.3f} |",
                  f"| mixture (IoU) | {faithful['mean_output_error_iou_mixture']:.3f} |",
                  f"| mixture (output error), held-out IoU {faithful['mean_iou_heldout']:.3f} | "
                  f"{faithful['mean_output_error']:.3f} |"]
    for run in tuning or []:
        lines += ["", f"Tuning: the first {run['n_heads']} heads of the order tuned jointly on "
                  f"{run['n_windows']} fit windows ({run['steps']} steps): KL(stock || replaced) "
                  f"{run['kl_start']:.4f} -> {run['kl_end']:.4f} nats per token"
                  + (f"; stopped: {run['stopped']}" if run["stopped"] else "") + "."]
    return lines


def headline_table(results: dict) -> str:
    """The few lines `attnc demo` prints."""
    rows = [
        ("model", results["model"]),
        ("windows (fit / held-out)", f"{results['n_windows_fit']} / {results['n_windows_heldout']} x {results['window']} tokens"),
        ("programs (selected)", f"{results['n_programs']} ({results['n_programs_selected']})"),
        ("mean best-fit IoU, held-out", f"{results['mean_best_iou_heldout']:.3f}"),
        ("mean best-mixture IoU, held-out", f"{results['mean_best_mixture_iou_heldout']:.3f}"),
        *([("mean faithful-mixture IoU, held-out", f"{results['faithful']['mean_iou_heldout']:.3f}")]
          if results.get("faithful") else []),
        ("perplexity, stock", f"{results['ppl_baseline']:.3f} ({results['tokens_evaluated']} held-out tokens)"),
    ]
    labels = {"programs": "programs", "content_free": "content-free baseline", "mean_ablation": "mean ablation"}
    for name, points in (results.get("baselines") or {"programs": results["sweep"]}).items():
        at = {round(p["fraction"], 4): p for p in points}
        shown = [f"{f:.0%} {at[f]['ppl']:.3f} ({at[f]['ppl_increase_pct']:+.1f}%)" for f in (0.1, 0.25) if f in at]
        if shown:
            rows.append((f"perplexity replaced, {labels.get(name, name)}", "; ".join(shown)))
    if results.get("programs_beat_baselines") is not None:
        rows.append(("programs beat both baselines at 10% and 25%", "yes" if results["programs_beat_baselines"] else "NO"))
    for task, row in results["qa"].items():
        rows.append((f"{task} accuracy (stock -> 25%)", f"{row['acc_baseline']:.3f} -> {row['acc_replaced_25']:.3f} (n={row['n']})"))
    rows.append(("wall time", f"{results['wall_seconds']:.0f} s"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _n_measured_heads(order: dict) -> int:
    """How many heads the order measured exactly (all of a measured order unless it screened; 0 else)."""
    if "measured_heads" in order:
        return len(order["measured_heads"])
    return len(order.get("values") or {}) if order.get("criterion") in _MEASURED_ORDER_NAMES else 0
