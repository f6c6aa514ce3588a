"""Hostile: grammar top level if main. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    return 1.0


if __name__ == '__main__':
    open('/tmp/attnc_pwned_grammar_top_level_if_main', 'w')
