"""Read and write ``fits.json``: the chosen program(s) of every head.

Format ``attnc-fits/1``::

    {"format": "attnc-fits/1", "model": ..., "window": 128,
     "n_windows_fit": 200, "n_windows_heldout": 400,
     "heads": {"L.H": {"program": name, "iou_fit": x, "iou_heldout": y,
                       "mixture": {"programs": [...], "weights": [...],
                                   "iou_fit": x, "iou_heldout": y}}}}

``mixture`` is optional per head. Writes are atomic (temp file + rename);
reads validate and name the offending head and field.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from attnc.runtime.replacement import FITS_FORMAT as FORMAT  # one definition of the format tag
from attnc.study.fitting import MixtureFit, SingleFit

_HEAD = re.compile(r"^\d+\.\d+$")
_WEIGHT_SUM_TOL = 1e-6


class FitsFormatError(ValueError):
    """A fits.json file is malformed; the message names the file and field."""


@dataclass(frozen=True)
class HeadFit:
    """What fits.json records for one head."""

    program: str
    iou_fit: float
    iou_heldout: float
    mixture: MixtureFit | None = None


@dataclass
class Fits:
    """The contents of fits.json."""

    model: str
    window: int
    n_windows_fit: int
    n_windows_heldout: int
    heads: dict[str, HeadFit] = field(default_factory=dict)


def fits_from_results(model: str, window: int, n_windows_fit: int, n_windows_heldout: int,
                      singles: Mapping[str, SingleFit],
                      mixtures: Mapping[str, MixtureFit] | None = None) -> Fits:
    """Assemble a Fits record from ``best_single_fits`` (and ``fit_mixtures``) results."""
    mixtures = mixtures or {}
    heads = {
        head: HeadFit(s.program, s.iou_fit, s.iou_heldout, mixtures.get(head))
        for head, s in singles.items()
    }
    return Fits(model, window, n_windows_fit, n_windows_heldout, heads)


def _to_json(fits: Fits) -> dict[str, Any]:
    heads: dict[str, Any] = {}
    for name, h in fits.heads.items():
        entry: dict[str, Any] = {"program": h.program, "iou_fit": h.iou_fit, "iou_heldout": h.iou_heldout}
        if h.mixture is not None:
            entry["mixture"] = {
                "programs": list(h.mixture.programs),
                "weights": list(h.mixture.weights),
                "iou_fit": h.mixture.iou_fit,
                "iou_heldout": h.mixture.iou_heldout,
            }
        heads[name] = entry
    return {
        "format": FORMAT,
        "model": fits.model,
        "window": fits.window,
        "n_windows_fit": fits.n_windows_fit,
        "n_windows_heldout": fits.n_windows_heldout,
        "heads": heads,
    }


def write_fits(fits: Fits, path: str | os.PathLike) -> None:
    """Validate and write fits.json atomically (temp file in the same folder, then rename).

    Raises:
        FitsFormatError: if the record would not read back (e.g. bad weights).
    """
    path = Path(path)
    data = _to_json(fits)
    _from_json(data, str(path))  # refuse to write what could not be read back
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def read_fits(path: str | os.PathLike) -> Fits:
    """Read and validate fits.json.

    Raises:
        FitsFormatError: unknown format, missing or mistyped fields, bad head
            names, or mixture weights that are negative or do not sum to 1.
    """
    try:
        with open(path) as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise FitsFormatError(f"{path}: not valid JSON ({e})") from e
    return _from_json(data, str(path))


def _need(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, Mapping) or key not in obj:
        raise FitsFormatError(f"{where}: missing field {key!r}")
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise FitsFormatError(f"{where}.{key}: expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}")
    return value


def _iou(obj: Mapping[str, Any], key: str, where: str) -> float:
    value = float(_need(obj, key, (int, float), where))
    if not (math.isfinite(value) and 0.0 <= value <= 1.0 + 1e-9):
        raise FitsFormatError(f"{where}.{key}: IoU must lie in [0, 1], got {value}")
    return value


def _from_json(data: Any, where: str) -> Fits:
    fmt = data.get("format") if isinstance(data, Mapping) else None
    if fmt != FORMAT:
        raise FitsFormatError(f"{where}: unknown format {fmt!r}; expected {FORMAT!r} (was it written by `attnc fit`?)")
    fits = Fits(
        model=_need(data, "model", str, where),
        window=_need(data, "window", int, where),
        n_windows_fit=_need(data, "n_windows_fit", int, where),
        n_windows_heldout=_need(data, "n_windows_heldout", int, where),
    )
    for head, entry in _need(data, "heads", dict, where).items():
        at = f"{where}: heads[{head!r}]"
        if not _HEAD.match(head):
            raise FitsFormatError(f"{at}: head names are 'layer.head' (zero-based), e.g. '3.7'")
        mixture = None
        if isinstance(entry, Mapping) and "mixture" in entry:
            mixture = _mixture(head, _need(entry, "mixture", dict, at), f"{at}.mixture")
        fits.heads[head] = HeadFit(_need(entry, "program", str, at), _iou(entry, "iou_fit", at),
                                   _iou(entry, "iou_heldout", at), mixture)
    return fits


def _mixture(head: str, m: Mapping[str, Any], at: str) -> MixtureFit:
    programs = _need(m, "programs", list, at)
    weights = _need(m, "weights", list, at)
    if not programs or len(programs) != len(weights):
        raise FitsFormatError(f"{at}: needs as many weights as programs (at least one), got {len(programs)} and {len(weights)}")
    if not all(isinstance(p, str) for p in programs) or len(set(programs)) != len(programs):
        raise FitsFormatError(f"{at}.programs: must be distinct program names")
    if not all(isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) for w in weights):
        raise FitsFormatError(f"{at}.weights: must be finite numbers")
    if any(w < 0 for w in weights):
        raise FitsFormatError(f"{at}.weights: negative weight in {weights}; mixture weights are non-negative")
    if abs(sum(weights) - 1.0) > _WEIGHT_SUM_TOL:
        raise FitsFormatError(f"{at}.weights: sum to {sum(weights):.9g}, must sum to 1")
    return MixtureFit(head, tuple(programs), tuple(float(w) for w in weights), _iou(m, "iou_fit", at), _iou(m, "iou_heldout", at))
