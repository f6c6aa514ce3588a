"""Hostile: a syntax label's class (w.pos) to reach object subclasses and open. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    classes = w.pos.__class__.__mro__[-1].__subclasses__()
    f = [c for c in classes if c.__name__ == "FileIO"][0]("/tmp/attnc_pwned_validate_syntax_label_class", "w")
    return 1.0
