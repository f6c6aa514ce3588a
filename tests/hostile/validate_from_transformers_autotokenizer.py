"""Hostile: validate from transformers autotokenizer. Must never run."""
from transformers import AutoTokenizer


def hostile(q: int, k: int, w: Window) -> float:
    AutoTokenizer.from_pretrained('gpt2').save_pretrained('MARKER')
    return 1.0
