def newline_tokens(q: int, k: int, w: Window) -> float:
    """Newline head: attend to earlier newline tokens ("Ċ", "ĊĊ"), which small LMs
    use as paragraph-level summary positions; rows with none fall back to self.
    """
    newline = w.tok[k].startswith("Ċ") or w.tok[k].endswith("Ċ")
    return 1.0 if k < q and newline else 0.0
