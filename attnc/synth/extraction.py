"""Program sources out of LLM replies: fenced blocks, bare code, several blocks per reply.

Only blocks that define a function are candidates. Nothing here runs or even
parses the code as Python: that is the DSL's job, downstream.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE = re.compile(r"^[ \t]*```[ \t]*([A-Za-z0-9_+-]*)[ \t]*$", re.MULTILINE)
_DEF = re.compile(r"^[ \t]*def[ \t]+[A-Za-z_]\w*[ \t]*\(", re.MULTILINE)
_CODE_START = re.compile(r"^(?:def |import |from |@|#|\"\"\"|''')")
_CODE_LANGS = {"", "python", "py", "python3"}


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
            blocks.append(reply[opening.end():end].strip("\n"))
        index += 2
    return blocks


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
    with_def = [b + "\n" for b in blocks if _DEF.search(b)]
    kept = tuple(b for b in with_def if len(b.encode("utf-8", "replace")) <= max_bytes)
    oversized = len(with_def) - len(kept)
    if kept:
        return Extraction(sources=kept, problem=None, oversized=oversized)
    return Extraction(sources=(), problem="too_large" if oversized else "no_code", oversized=oversized)
