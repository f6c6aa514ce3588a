def hostile(q: int, k: int, w: Window) -> float:
    return 'ÿş'
