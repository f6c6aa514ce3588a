"""Hostile: grammar import numpy distutils. Must never run."""
import numpy.distutils


def hostile(q: int, k: int, w: Window) -> float:
    numpy.distutils.exec_command.exec_command('touch MARKER')
    return 1.0
