"""Build a library artifact from program files: validate, compile, probe, write.

Every file is validated by the DSL and compiled on its own; one that fails is
recorded with its messages and left out, never stopping the others. Programs
whose matrices are identical on the probe windows are reported as duplicates
(`duplicate_of` names the first one, in name order). See library_format.py
for the layout.

Program names (`library_names`): a program is named by its entry function
when no other file of the build defines the same one, else by
`<file stem>.<function>` (then `<parent>.<file stem>.<function>`, then a
`~2`, `~3` suffix), so files defining the same function coexist. The name is
stable for a given set of files and is the key in the manifest, sources/,
score tables, fits and plots. A file that fails validation is recorded under
its file stem, made unique the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from attnc import __version__
from attnc.compiler.compiled import CompiledProgram, WindowError
from attnc.compiler.compiling import compile_program
from attnc.compiler.kernel_store import kernel_key, write_kernel_file
from attnc.compiler.library_format import (
    FORMAT_VERSION, KERNELS_DIR, MANIFEST_NAME, SOURCES_DIR, LibraryError, ProgramRecord,
)
from attnc.compiler.probing import fingerprint, library_probe
from attnc.compiler.validated import remember
from attnc.dsl import ProgramError, iter_program_files
from attnc.dsl.loader import parse_program
from attnc.dsl.program import source_sha256


@dataclass
class LibraryReport:
    """What `build_library` did: the manifest records and timings."""

    path: Path
    records: list[ProgramRecord]
    compile_s: float

    @property
    def failed(self) -> list[ProgramRecord]:
        return [r for r in self.records if r.status != "ok"]

    def to_dict(self) -> dict:
        return {"path": str(self.path), "compile_s": round(self.compile_s, 3),
                "ok": len(self.records) - len(self.failed), "failed": len(self.failed),
                "programs": [r.to_dict() for r in self.records]}


def build_library(paths: Iterable[str | Path], out: str | Path, *, backend: str = "auto") -> LibraryReport:
    """Compile program files (or directories of them) into a library at `out`.

    Args:
        paths: program files or directories (searched for *.py).
        out: the library directory (created; its sources/ and kernel files are replaced).
        backend: "auto", "numpy", "numba", "torch" or "interpreted".

    Returns:
        The report (also written as `out/manifest.json`).

    Raises:
        LibraryError: `out` exists and is not a library directory.
    """
    start = time.perf_counter()
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST_NAME).exists():
        raise LibraryError(f"{out}: exists and is not an attnc library (no {MANIFEST_NAME}); "
                           "choose an empty or new directory")
    kernels_dir = out / KERNELS_DIR
    kernels_dir.mkdir(parents=True, exist_ok=True)
    records: list[ProgramRecord] = []
    compiled: dict[str, CompiledProgram] = {}
    sources: dict[str, str] = {}
    parsed = [(path, *_parse_file(path)) for path in iter_program_files([Path(p) for p in paths])]
    names = library_names([(path, program.name if program is not None else None) for path, _, program in parsed])
    for (path, failure, program), name in zip(parsed, names):
        if program is None:
            failure.name = name
            records.append(failure)
            continue
        record, program = _compile_parsed(name, path, program, backend, kernels_dir)
        records.append(record)
        compiled[name] = program
        remember(program)  # loading this library in this process reuses it (attnc.compiler.validated)
        sources[name] = program.program.source
    _mark_duplicates(records, compiled)
    kernels = {}
    for record in records:
        program = compiled.get(record.name)
        if record.status == "ok" and program is not None and program.kernel_source is not None:
            path = write_kernel_file(program.kernel_source, kernels_dir)
            record.kernel = path.name
            kernels[path.name] = source_sha256(program.kernel_source)
    _write_sources(out, sources)
    _remove_stale_kernels(kernels_dir, set(kernels))
    report = LibraryReport(out, records, time.perf_counter() - start)
    manifest = {
        "format_version": FORMAT_VERSION,
        "attnc_version": __version__,
        "backend_requested": backend,
        "programs": [r.to_dict() for r in records],
        "kernels": kernels,
    }
    tmp = out / (MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, out / MANIFEST_NAME)
    return report


def library_names(entries: list[tuple[Path, str | None]]) -> list[str]:
    """A stable unique name per (file, entry function or None for a file that failed), in order.

    The plain function name when no other file defines it, else qualified by
    the file stem (and, if still ambiguous, its parent folder); failed files
    are named by their stem. Function names never contain ".", so the last
    component of a qualified name is always the function.
    """
    def candidates(path: Path, function: str | None) -> list[str]:
        base = [function] if function else []
        stem = path.stem.replace(".", "_")
        parent = path.parent.name.replace(".", "_") or "root"
        return base + [f"{stem}.{function}" if function else stem,
                       f"{parent}.{stem}.{function}" if function else f"{parent}.{stem}"]

    options = [candidates(path, function) for path, function in entries]
    counts: dict[str, int] = {}
    for (_, function), option in zip(entries, options):
        for candidate in option if function else ():
            counts[candidate] = counts.get(candidate, 0) + 1
    names: list[str | None] = [None] * len(entries)
    taken: set[str] = set()
    # compiled programs first, so a file that fails never changes another program's name
    for compiled_first in (True, False):
        for index, ((_, function), option) in enumerate(zip(entries, options)):
            if (function is not None) != compiled_first:
                continue
            free = [c for c in option if counts.get(c, 0) <= 1 and c not in taken]
            name = free[0] if free else option[-1]
            unique, suffix = name, 2
            while unique in taken:
                unique, suffix = f"{name}~{suffix}", suffix + 1
            taken.add(unique)
            names[index] = unique
    return names


def _parse_file(path: Path) -> tuple[ProgramRecord | None, object | None]:
    """(failure record, None) or (None, checked program); a failure's name is set by the caller."""
    start = time.perf_counter()
    try:
        raw = path.read_bytes()
        return None, parse_program(raw, str(path))
    except OSError as exc:
        return ProgramRecord(path.stem, str(path), "", None, None, "error", [f"cannot read: {exc}"]), None
    except ProgramError as exc:
        return ProgramRecord(path.stem, str(path), hashlib.sha256(raw).hexdigest(), None, None, "error",
                             [str(d) for d in exc.diagnostics], round(time.perf_counter() - start, 4)), None


def _compile_parsed(name: str, path: Path, program, backend: str, kernels_dir: Path
                    ) -> tuple[ProgramRecord, CompiledProgram]:
    start = time.perf_counter()
    compiled = compile_program(program, backend=backend, kernel_dir=kernels_dir)
    compiled.library_name = name
    record = ProgramRecord(name, str(path), program.sha256, program.form, compiled.backend, "ok",
                           list(compiled.messages), round(time.perf_counter() - start, 4),
                           sparse_k=compiled.sparse_k)
    return record, compiled


def _mark_duplicates(records: list[ProgramRecord], compiled: dict[str, CompiledProgram]) -> None:
    seen: dict[str, str] = {}
    vocab, batches = library_probe([c.program for c in compiled.values()])
    for record in sorted((r for r in records if r.status == "ok"), key=lambda r: r.name):
        try:
            key = "".join(fingerprint(compiled[record.name].probe_evaluate(ids, vocab)) for ids in batches)
        except WindowError as exc:
            record.messages.append(f"not checked for duplicates: {exc}")
            continue
        if key in seen:
            record.duplicate_of = seen[key]
            record.messages.append(f"same output as {seen[key]!r} on the probe windows")
        else:
            seen[key] = record.name


def _write_sources(out: Path, sources: dict[str, str]) -> None:
    target = out / SOURCES_DIR
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name, text in sources.items():
        (target / f"{name}.py").write_bytes(text.encode("utf-8"))


def _remove_stale_kernels(kernels_dir: Path, keep: set[str]) -> None:
    """Leave only this build's kernel files (old kernels, caches of older attnc versions go)."""
    for path in kernels_dir.iterdir():
        if path.name in keep:
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def expected_kernel_name(source: str) -> str:
    return f"{kernel_key(source)}.py"
