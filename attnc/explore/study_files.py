"""Find what a study directory holds: its results, per-head table, fits, order, library and attention store.

`attnc study` writes results.json and heads.csv into OUT and keeps every
stage's output in the stage cache (``OUT/cache/<stage>-<key>/``, the keys
recorded in results.json ``stage_keys``). `open_study` reads the report files
(they must be there) and locates the cached fits, order record, compiled
library and attention store (each may be gone: a deleted cache, a copied
report), saying in `missing` what the explorer will have to leave out.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from attnc.study.stage_cache import RECORD_NAME

#: Report files an out dir must have to be explored.
REQUIRED_FILES = ("results.json", "heads.csv")


class ExploreError(ValueError):
    """A directory that is not a study's out dir (the message names what is missing)."""


@dataclass
class StudyFiles:
    """What the explorer reads from one study.

    Attributes:
        out: the study's out dir.
        results: results.json.
        heads: heads.csv rows (strings as written), in layer, head order.
        fits: fits.json ``heads`` (head -> fit record), {} when the cache is gone.
        order: the order stage's record (order, criterion, values), or None.
        library_dir: the compiled library, or None when not on disk.
        store_dir: the attention store, or None when not on disk.
        scores: program -> head -> held-out IoU (scores.csv), {} when absent.
        missing: what is not there, one sentence each, for the pages to say.
    """

    out: Path
    results: dict
    heads: list[dict]
    fits: dict = field(default_factory=dict)
    order: dict | None = None
    library_dir: Path | None = None
    store_dir: Path | None = None
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    @property
    def n_layers(self) -> int:
        info = self.results.get("model_info") or {}
        return int(info.get("n_layers") or 1 + max(int(r["layer"]) for r in self.heads))

    @property
    def n_heads(self) -> int:
        info = self.results.get("model_info") or {}
        return int(info.get("n_heads") or 1 + max(int(r["head_index"]) for r in self.heads))


def open_study(out: str | Path, *, cache: str | Path | None = None) -> StudyFiles:
    """Read a study's out dir and locate its cached stages.

    Args:
        out: the directory `attnc study --out` wrote.
        cache: the stage cache, when the study ran with ``--cache`` (default ``OUT/cache``).

    Raises:
        ExploreError: `out` is not a directory, lacks results.json or heads.csv,
            or results.json is unreadable.
    """
    out = Path(out)
    if not out.is_dir():
        raise ExploreError(f"{out}: no such directory; give the --out directory of an `attnc study` run")
    absent = [name for name in REQUIRED_FILES if not (out / name).is_file()]
    if absent:
        raise ExploreError(f"{out}: not a study directory (no {' and no '.join(absent)}); "
                           "give the --out directory of an `attnc study` run")
    try:
        results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ExploreError(f"{out / 'results.json'}: unreadable ({error})") from None
    if not isinstance(results, dict) or "sweep" not in results:
        raise ExploreError(f"{out / 'results.json'}: not the results of `attnc study` (no sweep)")
    with open(out / "heads.csv", newline="", encoding="utf-8") as f:
        heads = list(csv.DictReader(f))
    if not heads or "head" not in heads[0]:
        raise ExploreError(f"{out / 'heads.csv'}: no heads (an empty or foreign file)")
    files = StudyFiles(out=out, results=results, heads=heads)
    root = Path(cache) if cache is not None else out / "cache"
    keys = results.get("stage_keys") or {}

    def stage(name: str) -> Path | None:
        directory = root / f"{name}-{keys.get(name, '?')}"
        if name in keys and (directory / RECORD_NAME).is_file():
            return directory
        files.missing.append(f"the {name} stage's output is not in {root} (deleted, or the study ran with "
                             f"--cache elsewhere: pass it as --cache)")
        return None

    fit, order, compiled, extracted = stage("fit"), stage("order"), stage("compile"), stage("extract")
    if fit is not None:
        files.fits = json.loads((fit / "fits.json").read_text(encoding="utf-8"))["heads"]
    if order is not None:
        files.order = json.loads((order / RECORD_NAME).read_text(encoding="utf-8"))
    if compiled is not None and (compiled / "lib").is_dir():
        files.library_dir = compiled / "lib"
    if extracted is not None and (extracted / "store").is_dir():
        files.store_dir = extracted / "store"
    if (out / "scores.csv").is_file():
        with open(out / "scores.csv", newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                files.scores.setdefault(row["program"], {})[row["head"]] = float(row["iou_heldout"])
    return files
