"""Hostile: the base array behind w.dep_head, to make it writable. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    heads = w.dep_head.base
    heads.setflags(write=True)
    heads.tofile("/tmp/attnc_pwned_validate_syntax_dep_head_base")
    return 1.0
