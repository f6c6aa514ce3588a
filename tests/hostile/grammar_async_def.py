"""Hostile: grammar async def. Must never run."""
async def hostile(q: int, k: int, w: Window) -> float:
    open('MARKER', 'w')
    return 1.0
