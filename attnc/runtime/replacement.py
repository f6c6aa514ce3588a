"""Which program replaces which attention head: the head -> program map.

ARCHITECTURE.md, "Replacement semantics": a replaced head `layer.head` uses a
program matrix P (or a mixture `P = sum_i w_i P_i`) instead of its neural
attention. This module only holds and validates that map; the runtime that
applies it is `attnc.runtime.surrogate`.

Heads are named "layer.head", zero-based, everywhere (CLI, JSON, Python).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping, Sequence

from attnc.runtime.heads import Head as HeadKey, head_name, parse_head

FITS_FORMAT = "attnc-fits/1"
#: How far mixture weights may sum from 1 before they are rejected.
WEIGHT_SUM_TOLERANCE = 1e-6
Mixture = tuple[tuple[str, float], ...]
#: What replaces a head in a fits file: its best program, IoU mixture, or faithful mixture.
USES = ("best", "mixture", "faithful")


class ReplacementError(ValueError):
    """A replacement map is malformed or does not fit the model it is used with."""


def parse_head_name(name: str) -> HeadKey:
    """"3.7" -> (3, 7); raises ReplacementError with a hint otherwise."""
    try:
        return parse_head(str(name))
    except ValueError as error:
        raise ReplacementError(str(error)) from None


def _normalized_mixture(entries: Iterable[tuple[str, float]], where: str) -> Mixture:
    entries = [(str(name), float(weight)) for name, weight in entries]
    if not entries:
        raise ReplacementError(f"{where}: no programs given")
    for name, weight in entries:
        if not name:
            raise ReplacementError(f"{where}: empty program name")
        if not math.isfinite(weight) or weight < 0:
            raise ReplacementError(f"{where}: weight {weight} of program {name!r} must be finite and >= 0")
    total = sum(w for _, w in entries)
    if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
        raise ReplacementError(f"{where}: mixture weights sum to {total:.8g}, expected 1")
    merged: dict[str, float] = {}
    for name, weight in entries:
        if weight > 0:
            merged[name] = merged.get(name, 0.0) + weight / total
    if not merged:
        raise ReplacementError(f"{where}: all weights are 0")
    return tuple(merged.items())


@dataclass(frozen=True)
class ReplacementMap:
    """`(layer, head) -> ((program_name, weight), ...)`, weights >= 0 summing to 1.

    Build with `from_fits`, `from_programs` or the constructor; `validate_for`
    checks it against a model before any work is done.
    """

    heads: Mapping[HeadKey, Mixture] = field(default_factory=dict)

    def __post_init__(self) -> None:
        clean: dict[HeadKey, Mixture] = {}
        for key, mixture in dict(self.heads).items():
            layer, head = (parse_head_name(key) if isinstance(key, str) else (int(key[0]), int(key[1])))
            if layer < 0 or head < 0:
                raise ReplacementError(f"head {head_name(layer, head)}: layer and head must be >= 0")
            clean[(layer, head)] = _normalized_mixture(mixture, f"head {head_name(layer, head)}")
        object.__setattr__(self, "heads", dict(sorted(clean.items())))

    @classmethod
    def from_programs(cls, assignment: Mapping[str | HeadKey, str]) -> "ReplacementMap":
        """One program per head: `{"3.7": "prev_token", (0, 1): "first_token"}`."""
        return cls({key: ((name, 1.0),) for key, name in assignment.items()})

    @classmethod
    def from_fits(
        cls,
        fits: Mapping,
        *,
        heads: Sequence[str | HeadKey] | None = None,
        use: str = "best",
    ) -> "ReplacementMap":
        """Read a fits.json document (format "attnc-fits/1").

        Args:
            fits: the parsed JSON: `{"format": ..., "heads": {"L.H": {"program": name,
                "mixture": {"programs": [...], "weights": [...]}, ...}}}`.
            heads: replace only these heads (names or (layer, head)); default all heads
                in the file. A requested head missing from the file is an error.
            use: "best" (the single best program), "mixture" (the mixture fitted on
                IoU) or "faithful" (the mixture fitted to the head's output or the
                model's loss: the ``tuned`` entry, else the ``faithful`` one); a head
                without the one asked for falls back to its mixture, then to its best
                program.

        Raises:
            ReplacementError: wrong format, unknown `use`, missing head or program.
        """
        if use not in USES:
            raise ReplacementError(f"use={use!r}: expected one of {', '.join(USES)}")
        fmt = fits.get("format")
        if fmt != FITS_FORMAT:
            raise ReplacementError(f"fits format {fmt!r} is not {FITS_FORMAT!r}")
        entries = fits.get("heads")
        if not isinstance(entries, Mapping):
            raise ReplacementError("fits has no 'heads' object")
        by_key = {parse_head_name(name): (name, entry) for name, entry in entries.items()}
        if heads is None:
            wanted = list(by_key)
        else:
            wanted = [parse_head_name(h) if isinstance(h, str) else (int(h[0]), int(h[1])) for h in heads]
            missing = [head_name(*k) for k in wanted if k not in by_key]
            if missing:
                raise ReplacementError(f"heads {', '.join(missing)} are not in the fits file")
        chosen: dict[HeadKey, Mixture] = {}
        for key in wanted:
            name, entry = by_key[key]
            mixture = None
            if use == "faithful":
                mixture = entry.get("tuned") or entry.get("faithful") or entry.get("mixture")
            elif use == "mixture":
                mixture = entry.get("mixture")
            if mixture:
                programs, weights = mixture.get("programs"), mixture.get("weights")
                if not programs or weights is None or len(programs) != len(weights):
                    raise ReplacementError(f"fits head {name}: mixture needs 'programs' and 'weights' of equal length")
                chosen[key] = tuple(zip(programs, weights))
            else:
                program = entry.get("program")
                if not program:
                    raise ReplacementError(f"fits head {name}: no 'program'")
                chosen[key] = ((program, 1.0),)
        return cls(chosen)

    def __len__(self) -> int:
        return len(self.heads)

    def __iter__(self) -> Iterator[HeadKey]:
        return iter(self.heads)

    def program_names(self) -> list[str]:
        """Every program any head uses, sorted."""
        return sorted({name for mixture in self.heads.values() for name, _ in mixture})

    def by_layer(self) -> dict[int, list[tuple[int, Mixture]]]:
        """layer -> [(head, mixture), ...]."""
        out: dict[int, list[tuple[int, Mixture]]] = {}
        for (layer, head), mixture in self.heads.items():
            out.setdefault(layer, []).append((head, mixture))
        return out

    def validate_for(self, loaded_or_model) -> None:
        """Check every head exists in the model (a LoadedModel or a transformers model).

        Raises:
            ReplacementError: naming the heads the model does not have.
        """
        n_layers, n_heads = model_shape(loaded_or_model)
        bad = [head_name(l, h) for l, h in self.heads if l >= n_layers or h >= n_heads]
        if bad:
            raise ReplacementError(
                f"heads {', '.join(bad)} do not exist: the model has {n_layers} layers x {n_heads} heads "
                f"(names are zero-based 'layer.head')"
            )

    def to_json(self) -> dict:
        """`{"L.H": [[program, weight], ...]}` for result files."""
        return {head_name(*k): [[n, w] for n, w in m] for k, m in self.heads.items()}


def model_shape(loaded_or_model) -> tuple[int, int]:
    """(n_layers, n_heads) of a LoadedModel or a transformers model."""
    if hasattr(loaded_or_model, "n_layers") and hasattr(loaded_or_model, "n_heads"):
        return int(loaded_or_model.n_layers), int(loaded_or_model.n_heads)
    config = getattr(loaded_or_model, "config", None)
    if config is None:
        raise ReplacementError(f"cannot read layers/heads from {type(loaded_or_model).__name__}")
    return int(config.num_hidden_layers), int(config.num_attention_heads)
