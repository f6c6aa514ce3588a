"""Hostile: validate import shutil. Must never run."""
import shutil


def hostile(q: int, k: int, w: Window) -> float:
    shutil.copy('/etc/hostname', 'MARKER')
    return 1.0
