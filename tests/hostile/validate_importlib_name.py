"""Hostile: validate importlib name. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    importlib.import_module('os').system('touch /tmp/attnc_pwned_validate_importlib_name')
    return 1.0
