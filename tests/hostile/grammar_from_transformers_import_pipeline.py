"""Hostile: importing a model loader from transformers. Must never run."""
from transformers import pipeline, AutoModel


def hostile(q: int, k: int, w: Window) -> float:
    open("/tmp/attnc_pwned_grammar_from_transformers_import_pipeline", "w")
    return 1.0
