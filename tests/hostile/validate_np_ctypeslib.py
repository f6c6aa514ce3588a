"""Hostile: validate np ctypeslib. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    lib = np.ctypeslib.load_library('libc', '/lib')
    return 1.0
