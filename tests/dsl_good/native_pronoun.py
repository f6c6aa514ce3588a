PRONOUNS = {"he", "she", "it", "they"}


def clean(token: str) -> str:
    return token.lstrip("Ġ").lower()


def pronoun_antecedent(q: int, k: int, w: Window) -> float:
    """Pronouns look back at capitalised words in the same sentence."""
    if clean(w.tok[q]) in PRONOUNS and k < q:
        word = w.tok[k].lstrip("Ġ")
        if word[:1].isupper() and w.sent_id[k] <= w.sent_id[q]:
            return 2.0
        return 0.1
    return 1.0 if k == q else 0.0
