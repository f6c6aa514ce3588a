"""Hostile: except naming something that is not a built-in exception class. Must never run."""
import numpy as np


def hostile(q: int, k: int, w: Window) -> float:
    try:
        x = 1
    except (np.AxisError, KeyboardInterrupt, SystemExit, GeneratorExit):
        open("/tmp/attnc_pwned_validate_except_non_builtin_class", "w")
    return 1.0
