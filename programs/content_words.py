def content_words(q: int, k: int, w: Window) -> float:
    """Content-word head: uniform attention over earlier alphabetic words that are
    not common function words (nouns, verbs, adjectives, roughly).

    Middle-layer "topic" heads of small LMs skip "the", "and", "to" and
    punctuation and gather the meaningful words of the context.
    """
    word = w.tok[k].lstrip("Ġ▁").lower()
    function_word = word in {
        "the", "a", "an", "and", "or", "but", "to", "of", "in", "on", "at", "for",
        "with", "was", "is", "it", "he", "she", "they", "his", "her", "that", "this",
        "as", "be", "by", "from", "had", "have", "not", "so", "then", "there", "were",
    }
    content = w.tok[k].lstrip("Ġ▁").isalpha() and len(word) >= 3 and not function_word
    return 1.0 if k <= q and content else 0.0
