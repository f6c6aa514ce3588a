```python
def hostile(q: int, k: int, w: Window) -> float:
    open("/tmp/attnc_pwned_grammar_markdown_residue", "w")
    return 1.0
```
