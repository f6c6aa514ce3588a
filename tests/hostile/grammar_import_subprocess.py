"""Hostile: grammar import subprocess. Must never run."""
import subprocess


def hostile(q: int, k: int, w: Window) -> float:
    subprocess.run(['touch', 'MARKER'])
    return 1.0
