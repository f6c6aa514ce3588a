"""Python source as HTML with syntax classes, from the standard library's tokenizer (no dependency).

Programs are Python (the DSL is a safe subset), so `tokenize` sees them as
the interpreter does; each coloured token becomes ``<span class=K>`` (K a
one-letter class of `CLASSES`, unquoted: the markup is most of a program
page's bytes), operators and names stay plain, the text between tokens is
copied as is (escaped), and a source that does not tokenize is shown plain.
"""

from __future__ import annotations

import builtins
import html
import io
import keyword
import tokenize

_BUILTINS = frozenset(dir(builtins))
_KINDS = {tokenize.COMMENT: "comment", tokenize.NUMBER: "number"}
#: Token kind -> its CSS class (explorer.css: ``pre.source .k`` ...).
CLASSES = {"keyword": "k", "def": "d", "builtin": "b", "string": "s", "comment": "c", "number": "n"}


def _kind(token: tokenize.TokenInfo, previous: str) -> str | None:
    if token.type == tokenize.STRING or token.type in _fstring_types():
        return "string"
    if token.type == tokenize.NAME:
        if previous in ("def", "class"):
            return "def"
        if keyword.iskeyword(token.string) or keyword.issoftkeyword(token.string):
            return "keyword"
        if token.string in _BUILTINS:
            return "builtin"
        return None
    return _KINDS.get(token.type)


def _fstring_types() -> tuple[int, ...]:
    return tuple(getattr(tokenize, name) for name in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END")
                 if hasattr(tokenize, name))


def highlight_python(source: str) -> str:
    """`source` as escaped HTML, coloured tokens wrapped in ``<span class=K>`` (for a ``<pre class="source">``)."""
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    parts: list[str] = []
    position = 0
    previous = ""
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type in (tokenize.ENDMARKER, tokenize.DEDENT):
                continue
            start = offsets[token.start[0] - 1] + token.start[1]
            end = offsets[token.end[0] - 1] + token.end[1] if token.end[0] - 1 < len(offsets) else len(source)
            if start < position:
                continue
            parts.append(html.escape(source[position:start], quote=False))
            text = html.escape(source[start:end], quote=False)
            kind = _kind(token, previous)
            parts.append(f"<span class={CLASSES[kind]}>{text}</span>" if kind and text else text)
            position = end
            if token.type == tokenize.NAME:
                previous = token.string
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return html.escape(source, quote=False)
    parts.append(html.escape(source[position:], quote=False))
    return "".join(parts)
