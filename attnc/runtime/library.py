"""Load a compiled program library, trusting nothing on disk that was not re-checked.

`load_library(LIB)` reads `LIB/manifest.json` (refusing an unknown format
version), checks the sha256 of every source and kernel file against the
manifest, and refuses unexpected kernel files. Each program is then
re-validated by the DSL from its source and recompiled; the regenerated kernel
text must equal the file on disk before that file is imported (numba kernels)
or executed (array kernels). By default this per-program step runs on first
use of a program (`lazy=True`), which keeps loading a 1,000-program library
fast; `lazy=False` does it for all programs during the load.

`Library.matrices(names, ids)` is the runtime's ProgramSource protocol
(attnc/runtime/surrogate.py): name -> float64 [B, n, n], row-stochastic and
causal (output rule applied). `Library.sparse_matrices(names, ids)` is its
optional SparseProgramSource extension: the same matrices as K (key, weight)
pairs per row, for programs whose matrix depends on the window length only
and whose rows are narrow (previous token, first token, ...), computed
without any n x n work per call. `Library.window_independent(name)` says which
programs those are (WindowIndependentSource), so the runtime can reuse their rows.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from attnc.compiler.compiled import CompiledProgram, SparseRows, evaluate_library
from attnc.compiler.compiling import compile_program
from attnc.compiler.kernel_store import kernel_key
from attnc.compiler.library_format import (
    FORMAT_VERSION, KERNELS_DIR, MANIFEST_NAME, SOURCES_DIR, LibraryError, ProgramRecord,
)
from attnc.compiler.validated import recall
from attnc.dsl import ProgramError, parse_program
from attnc.dsl.program import source_sha256
from attnc.window import Vocab

__all__ = ["Library", "LibraryError", "load_library"]


def load_library(path: str | Path, *, vocab: Vocab | None = None, lazy: bool = True,
                 device: str = "cpu") -> "Library":
    """Open and verify a library directory written by `attnc compile`.

    Args:
        path: the library directory.
        vocab: the tokenizer's tables, needed by `matrices` (can be set later
            as `library.vocab`).
        lazy: re-validate and recompile each program on first use (True) or now.
        device: torch device for programs compiled for the torch backend.

    Returns:
        The library; `.names` lists the programs that compiled.

    Raises:
        LibraryError: missing/unreadable manifest, unknown format version,
            a file whose hash differs from the manifest, an unexpected kernel
            file, or (lazy=False) a program that no longer validates or whose
            kernel differs from its regenerated code.
    """
    root = Path(path)
    manifest_path = root / MANIFEST_NAME
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LibraryError(f"{root}: no {MANIFEST_NAME}; is this a library written by `attnc compile`?") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LibraryError(f"{manifest_path}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict):
        raise LibraryError(f"{manifest_path}: the manifest is not a JSON object")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise LibraryError(f"{manifest_path}: library format version {version!r}, this attnc reads version "
                           f"{FORMAT_VERSION}; recompile the library with `attnc compile`")
    try:
        records = [ProgramRecord.from_dict(r) for r in manifest["programs"]]
        kernels: dict[str, str] = dict(manifest["kernels"])
    except (KeyError, TypeError) as exc:
        raise LibraryError(f"{manifest_path}: malformed manifest ({exc})") from None
    _verify_files(root, records, kernels)
    library = Library(root, manifest, records, vocab=vocab, device=device)
    if not lazy:
        for name in library.names:
            library.programs[name]
    return library


def _verify_files(root: Path, records: list[ProgramRecord], kernels: dict[str, str]) -> None:
    for record in records:
        if record.status != "ok":
            continue
        if "/" in record.name or "\\" in record.name or record.name.startswith("."):
            raise LibraryError(f"manifest: invalid program name {record.name!r}")
        source_path = root / SOURCES_DIR / f"{record.name}.py"
        try:
            text = source_path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise LibraryError(f"{source_path}: cannot read the program's source ({exc})") from None
        if source_sha256(text) != record.sha256:
            raise LibraryError(f"{source_path}: sha256 differs from the manifest: the source was changed "
                               "after compiling (tampered?); recompile the library")
        if record.kernel is not None and record.kernel not in kernels:
            raise LibraryError(f"manifest: program {record.name!r} names kernel {record.kernel!r} "
                               "that the manifest does not list")
    kernel_dir = root / KERNELS_DIR
    on_disk = {p.name for p in kernel_dir.iterdir()} if kernel_dir.exists() else set()
    unexpected = on_disk - set(kernels)
    if unexpected:
        raise LibraryError(f"{kernel_dir}: unexpected files {sorted(unexpected)} (tampered? a library holds "
                           "only generated kernel sources, no caches or pickles); recompile the library")
    for name, sha in kernels.items():
        kernel_path = kernel_dir / name
        try:
            text = kernel_path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise LibraryError(f"{kernel_path}: cannot read kernel ({exc})") from None
        if source_sha256(text) != sha or name != f"{kernel_key(text)}.py":
            raise LibraryError(f"{kernel_path}: kernel code differs from the manifest (tampered?); "
                               "recompile the library")


class _Programs(Mapping):
    """name -> CompiledProgram, validated and compiled on first access."""

    def __init__(self, library: "Library"):
        self._library = library
        self._compiled: dict[str, CompiledProgram] = {}
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> CompiledProgram:
        with self._lock:
            if name not in self._compiled:
                self._compiled[name] = self._library._compile(name)
            return self._compiled[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._library.names)

    def __len__(self) -> int:
        return len(self._library.names)


class Library:
    """A verified program library (see load_library).

    Attributes:
        path: the library directory.
        manifest: the parsed manifest.
        records: name -> ProgramRecord, for every program (failed ones included).
        programs: name -> CompiledProgram for the programs that compiled.
        vocab: the tokenizer's tables used by `matrices`.
    """

    def __init__(self, path: Path, manifest: dict, records: list[ProgramRecord], *, vocab: Vocab | None,
                 device: str = "cpu"):
        self.path = path
        self.manifest = manifest
        # one record per name; should an older manifest repeat a name, the compiled program wins
        self.records = {r.name: r for r in sorted(records, key=lambda r: r.status == "ok")}
        self.vocab = vocab
        self.device = device
        self._names = sorted(name for name, r in self.records.items() if r.status == "ok")
        self.programs: Mapping[str, CompiledProgram] = _Programs(self)

    @property
    def names(self) -> list[str]:
        """Programs that compiled, sorted by name."""
        return list(self._names)

    @property
    def errors(self) -> dict[str, list[str]]:
        """name -> messages, for programs that failed to validate or compile."""
        return {name: r.messages for name, r in self.records.items() if r.status != "ok"}

    def duplicates(self) -> dict[str, str]:
        """name -> the program it duplicates (same output on the probe windows)."""
        return {name: r.duplicate_of for name, r in self.records.items() if r.duplicate_of}

    def source_text(self, name: str) -> str:
        """The stored source of compiled program `name` (checked against the manifest's sha256)."""
        record = self.records.get(name)
        if record is None or record.status != "ok":
            raise KeyError(f"no compiled program named {name!r} in {self.path}")
        source_path = self.path / SOURCES_DIR / f"{name}.py"
        text = source_path.read_bytes().decode("utf-8")
        if source_sha256(text) != record.sha256:
            raise LibraryError(f"{source_path}: sha256 differs from the manifest (changed after loading?)")
        return text

    def _compile(self, name: str) -> CompiledProgram:
        record = self.records.get(name)
        if record is None or record.status != "ok":
            raise KeyError(f"no compiled program named {name!r} in {self.path}")
        source_path = self.path / SOURCES_DIR / f"{name}.py"
        text = self.source_text(name)  # the stored source has the manifest's sha256
        compiled = recall(record.sha256, record.backend, self.device)  # validated by this process already
        if compiled is None:
            try:
                program = parse_program(text, str(source_path))
            except ProgramError as exc:
                raise LibraryError(f"{source_path}: the stored source no longer validates:\n{exc}") from None
            compiled = compile_program(program, backend=record.backend, kernel_dir=self.path / KERNELS_DIR,
                                       device=self.device, probe=False)
        else:
            compiled.kernel_dir = self.path / KERNELS_DIR
        if compiled.program.name != name.rsplit(".", 1)[-1].split("~")[0]:
            raise LibraryError(f"{source_path}: defines {compiled.program.name!r}, the manifest says {name!r}")
        if compiled.backend != record.backend:
            raise LibraryError(f"{name}: compiles to backend {compiled.backend!r} now, the manifest says "
                               f"{record.backend!r}; recompile the library")
        expected = None if compiled.kernel_source is None else f"{kernel_key(compiled.kernel_source)}.py"
        if expected != record.kernel:
            raise LibraryError(f"{name}: regenerated kernel {expected!r} differs from the manifest's "
                               f"{record.kernel!r}; recompile the library")
        if expected is not None:
            on_disk = (self.path / KERNELS_DIR / expected).read_bytes().decode("utf-8")
            if on_disk != compiled.kernel_source:
                raise LibraryError(f"{self.path / KERNELS_DIR / expected}: differs from the regenerated kernel")
        compiled.sparse_k = record.sparse_k
        compiled.library_name = name
        return compiled

    def window_independent(self, name: str) -> bool:
        """Whether program `name`'s matrix depends on the window length only (the runtime's
        WindowIndependentSource protocol: the surrogate then reuses its validated rows).

        Raises:
            KeyError: an unknown program name.
        """
        return self.programs[name].window_independent

    #: sparse_matrices gives rows of K entries when K * SPARSE_RATIO <= n (the surrogate's
    #: threshold for its sparse P @ V: wider rows are cheaper as a dense matmul).
    SPARSE_RATIO = 8

    def sparse_matrices(self, names: Sequence[str], ids: np.ndarray) -> dict[str, SparseRows | None]:
        """Row-sparse matrices where that is cheap (the runtime's SparseProgramSource protocol).

        Args:
            names: program names.
            ids: int64 [B, n] windows.

        Returns:
            name -> SparseRows (keys int32 [B, n, K], weights float32 [B, n, K]:
            the rows of `matrices`, keys in increasing order, padding weight 0),
            for programs whose matrix depends on the window length only
            (CompiledProgram.window_independent) with K * SPARSE_RATIO <= n;
            None for the others (ask `matrices`).

        Raises:
            KeyError: an unknown program name.
            attnc.compiler.WindowError: a program failed on a window.
        """
        ids = np.asarray(ids, dtype=np.int64)
        self._check_names(names)
        out: dict[str, SparseRows | None] = {}
        for name in names:
            program = self.programs[name]
            out[name] = None
            if program.window_independent and ids.ndim == 2 and ids.shape[0]:
                # the row support first (cached): wide rows are never built for the whole batch
                if max(1, program.row_support(ids, self.vocab, causal=True)) * self.SPARSE_RATIO <= ids.shape[1]:
                    out[name] = program.evaluate_sparse(ids, self.vocab, causal=True, k="support")
        return out

    def _check_names(self, names: Sequence[str]) -> None:
        if self.vocab is None:
            raise LibraryError("Library.matrices needs the tokenizer's tables: load_library(..., vocab=...) "
                               "or set library.vocab")
        unknown = [n for n in names if n not in self.records or self.records[n].status != "ok"]
        if unknown:
            raise KeyError(f"no compiled program named {unknown}; known: {', '.join(self._names[:20])}...")

    def matrices(self, names: Sequence[str], ids: np.ndarray, *,
                 out: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Program matrices for windows of ids (the runtime's ProgramSource protocol).

        Args:
            names: program names.
            ids: int64 [B, n] windows.
            out: name -> a writable C-contiguous float64 [B, n, n] buffer to write
                that program's matrices into (reused across batches of one shape,
                it saves the page faults of a new array); others get new arrays.

        Returns:
            name -> float64 [B, n, n], row-stochastic, causal, output rule applied.

        Raises:
            KeyError: an unknown program name.
            attnc.compiler.WindowError: a program failed on a window (name and window in the message).
        """
        self._check_names(names)
        result = evaluate_library([self.programs[n] for n in names], ids, self.vocab, causal=True, out=out)
        if result.errors:
            first = next(iter(result.errors))
            raise result.exceptions[first]
        return result.matrices
