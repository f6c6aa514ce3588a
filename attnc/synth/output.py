"""Writing accepted programs: a unique valid name, a provenance header, atomic files."""

from __future__ import annotations

import keyword
import re
from pathlib import Path

from attnc.synth.cache import write_atomically

MAX_NAME_LENGTH = 48
_DEF_LINE = r"^def[ \t]+{name}[ \t]*\("


def clean_name(name: str) -> str:
    """A lowercase snake_case identifier made from `name` (never a keyword, never empty)."""
    cleaned = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")
    cleaned = re.sub(r"_+", "_", cleaned)[:MAX_NAME_LENGTH].rstrip("_") or "program"
    if cleaned[0].isdigit():
        cleaned = f"p_{cleaned}"
    if keyword.iskeyword(cleaned) or keyword.issoftkeyword(cleaned):
        cleaned = f"{cleaned}_program"
    return cleaned


def unique_name(entry_name: str, head: str, out_dir: Path, taken: set[str]) -> str:
    """A name for a new program file: the entry's own name when free, else with the
    head (`_l3h5`) and then a counter appended. `taken` holds names given this run."""
    base = clean_name(entry_name)
    head_tag = "l" + "h".join(re.sub(r"[^0-9]", "", part) or "x" for part in head.split(".", 1))
    candidates = [base, f"{base}_{head_tag}"] + [f"{base}_{head_tag}_{i}" for i in range(2, 1000)]
    for name in candidates:
        if name not in taken and not (out_dir / f"{name}.py").exists():
            return name
    raise FileExistsError(f"{out_dir}: no free file name for {base!r} after 1000 tries; clean up the directory")


def rename_entry(source: str, old: str, new: str) -> str:
    """`source` with the entry point's `def old(` renamed to `def new(`."""
    if old == new:
        return source
    renamed, count = re.subn(_DEF_LINE.format(name=re.escape(old)), f"def {new}(", source, count=1, flags=re.MULTILINE)
    if count != 1:
        raise ValueError(f"entry point 'def {old}(' not found at the start of a line")
    return renamed


def provenance_header(fields: dict[str, str]) -> str:
    """Comment lines recording where a program came from (comments pass the DSL)."""
    lines = ["# Written by attnc synth from an LLM candidate; review before trusting it."]
    for key, value in fields.items():
        value = str(value).replace("\n", " ").replace("\r", " ")
        lines.append(f"# {key}: {value}")
    return "\n".join(lines) + "\n"


def write_program(path: Path, text: str) -> None:
    """Write atomically (temp file + rename): an interrupted run never leaves half a file."""
    write_atomically(path, text)
