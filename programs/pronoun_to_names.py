def pronoun_to_names(q: int, k: int, w: Window) -> float:
    """Coreference-ish head: a pronoun attends to earlier capitalised words that do
    not start a sentence (names such as "ĠTom", "ĠMrs"); other tokens attend to themselves.

    A crude model of the name-mover / coreference heads of small LMs, which link
    "he", "she", "her" back to the people mentioned before.
    """
    pronoun = w.tok[q].lstrip("Ġ▁").lower() in {
        "he", "she", "him", "her", "his", "hers", "they", "them", "their", "it", "its",
    }
    name = w.tok[k].lstrip("Ġ▁").istitle() and w.tok[k].lstrip("Ġ▁").isalpha() and not w.sent_start[k]
    if pronoun:
        return 1.0 if k < q and name else 0.0
    return 1.0 if k == q else 0.0
