import numpy as np


def attend_to_bos(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Attention sink: everything attends to the BOS token if there is one, else to the first token."""
    ids = tokenizer(sentence, return_tensors="pt")["input_ids"][0].tolist()
    n = len(ids)
    specials = set(tokenizer.all_special_tokens)
    special_ids = {tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id,
                   tokenizer.cls_token_id, tokenizer.sep_token_id}
    special_ids.discard(None)
    endoftext = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    out = np.zeros((n, n))
    sink = 0
    for p, token_id in enumerate(ids):
        if token_id in special_ids or token_id == endoftext:
            sink = p
            break
    for i in range(n):
        out[i, min(sink, i)] = 1.0
        token = tokenizer.convert_ids_to_tokens(ids[i])
        if token in specials:
            out[i, i] += 0.5
    return "bos sink", out
