"""Program sources out of LLM replies: fenced blocks, bare code, several blocks per reply.

Only blocks that define a function are candidates. Nothing here runs or even
parses the code as Python: that is the DSL's job, downstream.

Small models often write the native entry function without its annotations
(``def previous(q, k, w):``), which the DSL does not take for the native form;
`annotate_entry` writes the signature in when a top-level function has exactly
the parameters ``q, k, w`` and none has the signature yet. The repaired source
is what gets validated (and written, if accepted).

Replies cut off at the token limit end inside a function: in an unclosed fence
the last, unfinished top-level function is dropped. A block defining several
entry-like functions (small models copy the prompt's examples and add more)
gives one candidate per entry, each with the block's other lines and helpers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE = re.compile(r"^[ \t]*```[ \t]*([A-Za-z0-9_+-]*)[ \t]*$", re.MULTILINE)
_DEF = re.compile(r"^[ \t]*def[ \t]+[A-Za-z_]\w*[ \t]*\(", re.MULTILINE)
_CODE_START = re.compile(r"^(?:def |import |from |@|#|\"\"\"|''')")
_CODE_LANGS = {"", "python", "py", "python3"}
#: A top-level `def` line: name, parameters, return annotation (if any).
_ENTRY_LINE = re.compile(r"^def[ \t]+([A-Za-z_]\w*)[ \t]*\(([^()]*)\)[ \t]*(?:->[^:]*)?:[ \t]*(#.*)?$", re.MULTILINE)
#: The native form's signature (see docs/dsl.md); the paper form needs no annotations.
_NATIVE = "def {name}(q: int, k: int, w: Window) -> float:"


@dataclass(frozen=True)
class Extraction:
    """What a reply yielded.

    Attributes:
        sources: candidate program sources, in reply order.
        problem: why there are none: "no_code" or "too_large"; None when sources exist.
        oversized: code blocks that defined a function but were too large.
    """

    sources: tuple[str, ...]
    problem: str | None
    oversized: int = 0


def _fenced_blocks(reply: str) -> list[str] | None:
    """Contents of ``` fences (an unclosed last fence runs to the end); None if no fence."""
    fences = list(_FENCE.finditer(reply))
    if not fences:
        return None
    blocks = []
    index = 0
    while index < len(fences):
        opening = fences[index]
        closing = fences[index + 1] if index + 1 < len(fences) else None
        end = closing.start() if closing else len(reply)
        if opening.group(1).lower() in _CODE_LANGS:
            block = reply[opening.end():end].strip("\n")
            blocks.append(block if closing else _drop_unfinished(block))
        index += 2
    return blocks


def _top_level_defs(lines: list[str]) -> list[tuple[int, int]]:
    """(first, end) line spans of top-level functions: a `def` line up to the next top-level statement."""
    spans = []
    for i, line in enumerate(lines):
        if line.startswith("def "):
            end = i + 1
            while end < len(lines) and (not lines[end].strip() or lines[end][:1] in " \t#" or
                                        lines[end].startswith((")", "]", "}"))):
                end += 1
            spans.append((i, end))
    return spans


def _drop_unfinished(block: str) -> str:
    """A block cut off mid-reply without its last top-level function (kept when it is the only one)."""
    lines = block.splitlines()
    spans = _top_level_defs(lines)
    if len(spans) < 2 or spans[-1][1] != len(lines):
        return block
    return "\n".join(lines[:spans[-1][0]]).rstrip("\n")


def _split_entries(block: str) -> list[str]:
    """One source per entry-like function of `block` (more than one: small models' habit); else `[block]`.

    Entry-like: a top-level function with parameters ``q, k, w`` or two
    parameters, that no other function calls. Each source keeps the block's
    other top-level lines (imports, constants) and its non-entry functions.
    """
    lines = block.splitlines()
    spans = _top_level_defs(lines)
    names = {span: _ENTRY_LINE.match(lines[span[0]]) for span in spans}

    def entry_like(span) -> bool:
        match = names[span]
        if match is None:
            return False
        params = [p for p in match.group(2).split(",") if p.strip()]
        called = any(re.search(rf"\b{match.group(1)}\s*\(", "\n".join(lines[a + 1:b])) for a, b in spans if (a, b) != span)
        return len(params) in (2, 3) and not called

    entries = [span for span in spans if entry_like(span)]
    if len(entries) < 2:
        return [block]
    sources = []
    for keep in entries:
        dropped = {i for span in entries if span != keep for i in range(*span)}
        sources.append("\n".join(line for i, line in enumerate(lines) if i not in dropped).strip("\n"))
    return sources


def _bare_code(reply: str) -> list[str]:
    """Code written without fences: from the first line that starts code to the last
    line that is indented or starts code (trailing prose dropped)."""
    if not _DEF.search(reply):
        return []
    lines = reply.splitlines()
    start = next((i for i, line in enumerate(lines) if _CODE_START.match(line)), None)
    if start is None:
        return []
    end = start
    for i in range(start, len(lines)):
        line = lines[i]
        if not line.strip() or line[:1] in " \t" or _CODE_START.match(line) or line.startswith(("return", ")", "]", "}")):
            end = i
        else:
            break
    return ["\n".join(lines[start:end + 1]).strip("\n")]


def annotate_entry(source: str) -> str:
    """`source` with the native signature written into its entry function, when it lacks one.

    Only the first top-level function whose parameters are exactly ``q, k, w``
    (annotated or not) is rewritten, and only when no top-level function
    already has the native signature.
    """
    lines = list(_ENTRY_LINE.finditer(source))
    if any(m.group(0).split("#")[0].strip() == _NATIVE.format(name=m.group(1)) for m in lines):
        return source
    for match in lines:
        names = tuple(p.split(":")[0].split("=")[0].strip() for p in match.group(2).split(",") if p.strip())
        if names == ("q", "k", "w"):
            comment = f"  {match.group(3)}" if match.group(3) else ""
            return source[:match.start()] + _NATIVE.format(name=match.group(1)) + comment + source[match.end():]
    return source


def extract_sources(reply: str, *, max_bytes: int) -> Extraction:
    """Candidate program sources in an LLM reply.

    Args:
        reply: the reply text.
        max_bytes: largest accepted code block (UTF-8 bytes); a reply over
            4x this is rejected whole before any scanning.

    Returns:
        The sources that define a function; `problem` says why there are none.
    """
    if len(reply) > 4 * max_bytes or len(reply.encode("utf-8", "replace")) > 4 * max_bytes:
        return Extraction(sources=(), problem="too_large", oversized=1)
    blocks = _fenced_blocks(reply)
    if blocks is None:
        blocks = _bare_code(reply)
    with_def = [annotate_entry(source) + "\n" for b in blocks if _DEF.search(b) for source in _split_entries(b)]
    kept = tuple(b for b in with_def if len(b.encode("utf-8", "replace")) <= max_bytes)
    oversized = len(with_def) - len(kept)
    if kept:
        return Extraction(sources=kept, problem=None, oversized=oversized)
    return Extraction(sources=(), problem="too_large" if oversized else "no_code", oversized=oversized)
