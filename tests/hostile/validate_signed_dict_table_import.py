"""Hostile: validate signed dict table import (a signed literal table keyed by an import's call). Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    return {0: 1.5, -1: -0.75}.get(-__import__('os').system('touch /tmp/attnc_pwned_validate_signed_dict_table_import'), -2.0)
