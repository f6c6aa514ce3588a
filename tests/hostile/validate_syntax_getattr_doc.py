"""Hostile: getattr around the attribute allow-list, to the parse behind w.dep. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    doc = getattr(w.dep, "doc")
    doc.to_disk("/tmp/attnc_pwned_validate_syntax_getattr_doc")
    return 1.0
