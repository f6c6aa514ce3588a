"""Hostile: a nested function that reaches itself through a list. Must be stopped by the recursion guard."""
def hostile(q: int, k: int, w: Window) -> float:
    box = []

    def again(n: int) -> int:
        again_too = box[0]
        return again_too(n + 1)

    box.append(again)
    return float(again(0))
