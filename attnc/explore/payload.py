"""The JSON each explorer page embeds: the index, one head, one program.

Pure functions of a `StudyFiles` (what the study wrote), the programs'
sources and the `AttentionViews`; the pages' script draws everything from
these records, so a test can check the data without a browser.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from attnc.explore.attention_views import AttentionViews
from attnc.explore.study_files import StudyFiles
from attnc.runtime.heads import parse_head

#: Order criteria that are a cost of replacing a head (the grid's second colouring); "heldout_iou" is not.
IMPACT_CRITERIA = ("measured_loss_impact", "measured_kl", "estimated_loss_impact")
#: How the pages name each order criterion.
CRITERION_LABELS = {"measured_loss_impact": "measured loss impact", "measured_kl": "measured KL(stock || replaced)",
                    "estimated_loss_impact": "estimated loss impact", "heldout_iou": "held-out IoU"}
#: Sweep baselines results.json may carry, in the order the plot draws them.
BASELINE_NAMES = ("programs", "content_free", "mean_ablation")


@dataclass
class ProgramInfo:
    """A program as the pages show it: its docstring and highlighted source ("" when not on disk)."""

    name: str
    doc: str = ""
    source_html: str = ""
    backend: str = ""


def _float(text) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _uses_mixtures(files: StudyFiles) -> bool:
    """Whether the study replaced heads by their mixtures (`attnc study --use`), else by their best program."""
    return files.results.get("replacement_uses", "mixture") == "mixture"


def used_programs(files: StudyFiles) -> dict[str, tuple[list[str], list[float]]]:
    """head -> (programs, weights) that replace it in the sweep (its mixture when the study used mixtures)."""
    use_mixture = _uses_mixtures(files)
    used = {}
    for row in files.heads:
        fit = files.fits.get(row["head"])
        mixture = (fit or {}).get("mixture")
        if fit is None and row.get("mixture"):
            pairs = [part.split("=") for part in row["mixture"].split(";") if "=" in part]
            mixture = {"programs": [p for p, _ in pairs], "weights": [float(w) for _, w in pairs]}
        if use_mixture and mixture:
            used[row["head"]] = (list(mixture["programs"]), [float(w) for w in mixture["weights"]])
        else:
            used[row["head"]] = ([row["program"]], [1.0])
    return used


def head_rows(files: StudyFiles) -> list[dict]:
    """One record per head: program, mixture, IoUs, the used IoU, impact and replacement rank."""
    criterion = files.results.get("order", "")
    values = (files.order or {}).get("values") or {}
    used = used_programs(files)
    use_mixture = _uses_mixtures(files)
    rows = []
    for row in files.heads:
        layer, index = parse_head(row["head"])
        names, weights = used[row["head"]]
        mixture_iou = _float(row.get("mixture_iou_heldout"))
        impact = values.get(row["head"], _float(row.get(criterion)))
        rows.append({
            "head": row["head"], "layer": layer, "index": index, "program": row["program"],
            "used": " + ".join(f"{w:.2f} {n}" for n, w in zip(names, weights)) if len(names) > 1 else names[0],
            "used_programs": names, "used_weights": [round(w, 4) for w in weights],
            "iou_fit": _float(row["iou_fit"]), "iou_heldout": _float(row["iou_heldout"]),
            "mixture_iou_heldout": mixture_iou,
            "used_iou": mixture_iou if use_mixture and mixture_iou is not None else _float(row["iou_heldout"]),
            "impact": float(impact) if criterion in IMPACT_CRITERIA and impact not in (None, "") else None,
            "rank": int(row["replace_rank"]) if str(row.get("replace_rank", "")).isdigit() else None,
        })
    return sorted(rows, key=lambda r: (r["layer"], r["index"]))


def index_payload(files: StudyFiles, rows: list[dict], programs: dict[str, ProgramInfo], *, files_base: str) -> dict:
    """The index page: summary, grid, heads table, sweep with baselines, QA.

    `files_base`: the study's out dir relative to the site (its report files are linked).
    """
    r = files.results
    baselines = r.get("baselines") or {}
    series = {"programs": baselines.get("programs") or r["sweep"]}
    series.update({name: baselines[name] for name in BASELINE_NAMES[1:] if baselines.get(name)})
    criterion = r.get("order", "")
    notes = list(files.missing)
    if criterion not in IMPACT_CRITERIA:
        notes.append(f"this study ordered heads by {criterion_label(criterion)}: "
                     "no loss impact was measured, so the grid has no impact colouring")
    if not baselines:
        notes.append("results.json has no sweep baselines (content-free, mean ablation): only the programs' "
                     "sweep is plotted")
    if not r.get("qa"):
        notes.append("no QA in this study (`attnc study --qa piqa=FILE` adds it)")
    counts = {name: {"best": 0, "used": 0} for name in programs}
    for row in rows:
        counts.setdefault(row["program"], {"best": 0, "used": 0})["best"] += 1
        for name in row["used_programs"]:
            counts.setdefault(name, {"best": 0, "used": 0})["used"] += 1
    summary = [
        ("model", r.get("model", "?")),
        ("windows (fit / held-out)", f"{r.get('n_windows_fit')} / {r.get('n_windows_heldout')} x {r.get('window')} tokens"),
        ("programs (selected)", f"{r.get('n_programs')} ({r.get('n_programs_selected')})"),
        ("mean best-program IoU, held-out", _fmt(r.get("mean_best_iou_heldout"))),
        ("mean best-mixture IoU, held-out", _fmt(r.get("mean_best_mixture_iou_heldout"))),
        ("stock perplexity, held-out", f"{_fmt(r.get('ppl_baseline'))} ({r.get('tokens_evaluated')} tokens)"),
        ("replacement order", criterion_label(criterion)),
        ("heads replaced by", f"their {r.get('replacement_uses', 'mixture')}"),
    ]
    return {
        "page": "index", "model": r.get("model", "?"), "n_layers": files.n_layers, "n_heads": files.n_heads,
        "summary": summary, "heads": rows, "criterion": criterion_label(criterion),
        "impact_available": criterion in IMPACT_CRITERIA and any(row["impact"] is not None for row in rows),
        "sweep": {"series": series, "ppl_baseline": r.get("ppl_baseline"), "tokens": r.get("tokens_evaluated")},
        "qa": r.get("qa") or None, "notes": notes,
        "programs": [{"name": name, **counts[name]} for name in sorted(counts)],
        "files_base": files_base,
        "files": [name for name in ("report.md", "results.json", "heads.csv", "sweep.csv", "scores.csv", "qa.csv",
                                    *r.get("plots", [])) if (files.out / name).is_file()],
    }


def criterion_label(criterion: str) -> str:
    return CRITERION_LABELS.get(criterion, criterion.replace("_", " ") or "an unknown criterion")


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "?"


def head_payload(files: StudyFiles, row: dict, rows: list[dict], programs: dict[str, ProgramInfo],
                 views: AttentionViews | None, tokens: int) -> dict:
    """One head's page: its programs' sources, the windows, neural vs program attention, statistics."""
    position = next(i for i, other in enumerate(rows) if other["head"] == row["head"])
    notes = []
    if views is None:
        notes.append("the attention store is not on disk (" + "; ".join(files.missing or ["unknown reason"])
                     + "): no attention to show; rerun `attnc study` to restore it")
    else:
        notes += views.problems
    view = views.heads.get(row["head"]) if views else None
    return {
        "page": "head", "model": files.results.get("model", "?"), "head": row["head"], "row": row,
        "n_heads_total": len(rows), "criterion": criterion_label(files.results.get("order", "")),
        "fit": files.fits.get(row["head"]),
        "programs": [{"weight": w, **asdict(programs.get(n) or ProgramInfo(n))}
                     for n, w in zip(row["used_programs"], row["used_weights"])],
        "best_program": asdict(programs.get(row["program"]) or ProgramInfo(row["program"])),
        "windows": [asdict(w) for w in views.windows] if views and view else [],
        "view": asdict(view) if view else None, "tokens": tokens, "notes": notes,
        "prev": rows[position - 1]["head"] if position > 0 else None,
        "next": rows[position + 1]["head"] if position + 1 < len(rows) else None,
    }


def program_payload(files: StudyFiles, info: ProgramInfo, rows: list[dict]) -> dict:
    """One program's page: the heads that use it (best or in a mixture), its held-out IoU on every head
    (``scores``: layer-major, None where not scored)."""
    users = []
    for row in rows:
        if info.name in row["used_programs"] or row["program"] == info.name:
            weight = dict(zip(row["used_programs"], row["used_weights"])).get(info.name)
            users.append({"head": row["head"], "best": row["program"] == info.name, "weight": weight,
                          "used_iou": row["used_iou"], "iou_heldout": files.scores.get(info.name, {}).get(row["head"])})
    notes = [] if info.source_html else ["the program's source is not on disk (the compiled library is missing)"]
    alone = files.scores.get(info.name, {})
    scores = [_round(alone.get(f"{layer}.{head}")) for layer in range(files.n_layers) for head in range(files.n_heads)]
    return {"page": "program", "model": files.results.get("model", "?"), "program": asdict(info), "users": users,
            "scores": scores, "n_layers": files.n_layers, "n_heads": files.n_heads, "notes": notes}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
