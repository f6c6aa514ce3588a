"""Hostile: private members behind the syntax features, to reach the spaCy Doc and its user data. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    doc = w.lemma._doc
    w._window.vocab.decoder = lambda ids: open("/tmp/attnc_pwned_validate_syntax_label_private", "w")
    return 1.0 if doc.user_data else 0.0
