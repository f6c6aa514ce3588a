import numpy as np


def is_content_word(token):
    """True for alphabetic words of 3+ letters that are not common function words."""
    stop_words = {
        "the", "and", "but", "for", "with", "was", "she", "his", "her", "they",
        "that", "this", "from", "had", "have", "not", "then", "there", "were",
        "you", "are", "said", "all", "one", "out", "into",
    }
    word = token.lstrip("Ġ").lower()
    return word.isalpha() and len(word) >= 3 and word not in stop_words


def content_word_focus(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Topic head (paper form): every token attends to the content words seen so
    far (nouns, verbs, adjectives), skipping function words and punctuation.
    """
    toks = tokenizer([sentence], return_tensors="pt")
    n = len(toks.input_ids[0])
    tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0])
    content = [is_content_word(t) for t in tokens]
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1):
            if content[j]:
                out[i, j] = 1.0
    out += 1e-4
    out = out / out.sum(axis=1, keepdims=True)
    return "Attend to earlier content words", out
