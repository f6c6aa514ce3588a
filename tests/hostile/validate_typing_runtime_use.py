"""Hostile: typing names used at run time (get_type_hints evaluates strings). Must never run."""
import typing
from typing import get_type_hints, cast


def hostile(q: int, k: int, w: Window) -> float:
    h = get_type_hints(hostile)
    x = cast(int, 1)
    y = typing.get_type_hints(hostile)
    return 1.0
