import numpy as np


def inside_brackets(sentence, tokenizer):
    """Tokens inside brackets or quotes attend to the opening bracket."""
    toks = tokenizer([sentence], return_tensors="pt")
    tokens = [t.strip("Ġ") for t in tokenizer.convert_ids_to_tokens(toks.input_ids[0])]
    n = len(tokens)
    out = np.eye(n)
    stack = []
    for i in range(n):
        if stack:
            out[i, stack[-1]] = 5.0
        if tokens[i] in ("(", "[", "{"):
            stack.append(i)
        elif tokens[i] in (")", "]", "}") and len(stack) > 0:
            stack.pop()
        elif tokens[i] == '"':
            if stack and tokens[stack[-1]] == '"':
                stack.pop()
            else:
                stack.append(i)
    return "brackets", out
