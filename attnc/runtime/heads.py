"""Head names: a head is always ``layer.head``, both zero-based (e.g. ``3.7``).

The same names appear in the CLI (``--heads 0.1,3.*``), JSON outputs, plots
and the Python API, where a head is the tuple ``(layer, head)``.
"""

from __future__ import annotations

from typing import Iterable

Head = tuple[int, int]


def head_name(layer: int, head: int) -> str:
    """``(3, 7)`` -> ``"3.7"``."""
    return f"{int(layer)}.{int(head)}"


def parse_head(text: str) -> Head:
    """``"3.7"`` -> ``(3, 7)``.

    Raises:
        ValueError: not of the form ``layer.head`` with non-negative integers.
    """
    parts = text.strip().split(".")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"bad head name {text.strip()!r}: expected layer.head with zero-based integers, e.g. 3.7")
    return int(parts[0]), int(parts[1])


def parse_heads(text: str, *, n_layers: int | None = None, n_heads: int | None = None) -> list[Head]:
    """Parse a comma-separated head list, in the order given.

    Accepts ``layer.head`` items, ``layer.*`` (every head of a layer; needs
    `n_heads`) and ``all`` (needs both sizes). When sizes are given the heads
    are checked against them.

    Raises:
        ValueError: malformed item, out-of-range or repeated head, or a
            wildcard without the model's sizes.
    """
    heads: list[Head] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if item == "all":
            if n_layers is None or n_heads is None:
                raise ValueError("'all' heads needs the model's n_layers and n_heads")
            heads.extend(all_heads(n_layers, n_heads))
        elif item.endswith(".*"):
            if n_heads is None:
                raise ValueError(f"{item!r} needs the model's n_heads")
            layer = parse_head(item[:-2] + ".0")[0]
            heads.extend((layer, h) for h in range(n_heads))
        else:
            heads.append(parse_head(item))
    if not heads:
        raise ValueError(f"no heads in {text!r}; expected e.g. 0.1,3.7")
    if n_layers is not None and n_heads is not None:
        check_heads(heads, n_layers, n_heads)
    return heads


def all_heads(n_layers: int, n_heads: int) -> list[Head]:
    """Every head, layer-major: (0,0), (0,1), ..., (L-1,H-1)."""
    return [(layer, head) for layer in range(n_layers) for head in range(n_heads)]


def check_heads(heads: Iterable[Head], n_layers: int, n_heads: int) -> list[Head]:
    """Return `heads` as a list after checking range and uniqueness.

    Raises:
        ValueError: a head outside the model, or listed twice.
    """
    heads = [(int(layer), int(head)) for layer, head in heads]
    seen: set[Head] = set()
    for layer, head in heads:
        if not (0 <= layer < n_layers and 0 <= head < n_heads):
            raise ValueError(
                f"head {head_name(layer, head)} is outside the model "
                f"(layers 0..{n_layers - 1}, heads 0..{n_heads - 1})"
            )
        if (layer, head) in seen:
            raise ValueError(f"head {head_name(layer, head)} is listed twice")
        seen.add((layer, head))
    return heads
