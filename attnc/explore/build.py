"""`build_explorer`: a study's out dir -> a static site (index, a page per head, a page per program).

The pipeline, one call per step: `open_study` (what is on disk) ->
`load_inputs` (library, store, tokenizer; each may be missing) ->
`attention_views` (a few held-out windows per head) -> `*_payload` (each
page's JSON) -> `write_page`. What is missing becomes a sentence on the
pages, never a failure; only a directory that is not a study is an error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from attnc.explore.attention_views import DEFAULT_TOKENS, DEFAULT_WINDOWS, AttentionViews, attention_views
from attnc.explore.highlight import highlight_python
from attnc.explore.pages import copy_assets, head_file, program_file, write_page
from attnc.explore.payload import ProgramInfo, head_payload, head_rows, index_payload, program_payload, used_programs
from attnc.explore.study_files import ExploreError, StudyFiles, open_study
from attnc.window import Vocab

if TYPE_CHECKING:
    from attnc.runtime.library import Library
    from attnc.runtime.store import AttentionStore

__all__ = ["ExploreError", "ExplorerSite", "build_explorer"]


@dataclass
class ExplorerSite:
    """What `build_explorer` wrote.

    Attributes:
        directory: the site (open ``index.html``).
        pages: every HTML file written.
        n_bytes: the site's total size.
        notes: what the pages say is missing.
        seconds: build time.
    """

    directory: Path
    pages: list[Path]
    n_bytes: int
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def index(self) -> Path:
        return self.directory / "index.html"


@dataclass
class StudyInputs:
    """The study's heavy inputs, each None when it could not be opened (the reason in `problems`)."""

    library: Library | None
    store: AttentionStore | None
    vocab: Vocab | None
    problems: list[str] = field(default_factory=list)


def load_inputs(files: StudyFiles, *, vocab: Vocab | None = None, library: Library | None = None,
                store: AttentionStore | None = None, model: str | None = None) -> StudyInputs:
    """Open the attention store and, when it is there (else nothing is drawn from them), the tokenizer of
    `model` (default: the study's model) and the compiled library."""
    from attnc.compiler import LibraryError
    from attnc.runtime.library import load_library
    from attnc.runtime.models import ModelLoadError, ModelNotFoundError, load_model
    from attnc.runtime.store import AttentionStore, StoreError

    problems: list[str] = []
    if store is None and files.store_dir is not None:
        try:
            store = AttentionStore.open(files.store_dir)
        except StoreError as error:
            problems.append(str(error))
    if vocab is None and store is not None:
        model = model or files.results.get("model", "")
        try:
            vocab = load_model(model).vocab
        except (ModelNotFoundError, ModelLoadError, OSError, ValueError) as error:
            problems.append(f"the study's model {model!r} could not be loaded for its tokenizer ({error}); "
                            "tokens are shown as ids")
    if library is None and store is not None and files.library_dir is not None:
        try:
            library = load_library(files.library_dir, vocab=vocab)
        except LibraryError as error:
            problems.append(str(error))
    return StudyInputs(library, store, vocab, problems)


def program_infos(files: StudyFiles, names: set[str]) -> dict[str, ProgramInfo]:
    """Docstring and highlighted source of every program named (from the library's stored sources)."""
    import json

    backends = {}
    if files.library_dir is not None:
        manifest = json.loads((files.library_dir / "manifest.json").read_text(encoding="utf-8"))
        backends = {r["name"]: r.get("backend") or "" for r in manifest["programs"] if r.get("status") == "ok"}
    infos = {}
    for name in sorted(names | set(backends)):
        info = ProgramInfo(name, backend=backends.get(name, ""))
        path = files.library_dir / "sources" / f"{name}.py" if files.library_dir else None
        if path is not None and path.is_file():
            source = path.read_text(encoding="utf-8")
            info.source_html = highlight_python(source)
            info.doc = entry_docstring(source, name)
        infos[name] = info
    return infos


def entry_docstring(source: str, name: str) -> str:
    """The docstring of function `name` in `source` (of the first function if none is so named), for display.

    Read with the standard library's parser: the DSL's own parse validates too and is 50 times slower,
    which counts for a 500-program library; the source was validated when the library was built.
    """
    import ast

    try:
        functions = [n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)]
    except SyntaxError:
        return ""
    entry = next((f for f in functions if f.name == name), functions[0] if functions else None)
    return (ast.get_docstring(entry) or "") if entry else ""


def build_explorer(out: str | Path, dest: str | Path | None = None, *, cache: str | Path | None = None,
                   model: str | None = None, vocab: Vocab | None = None, library: Library | None = None,
                   store: AttentionStore | None = None, windows: int = DEFAULT_WINDOWS,
                   tokens: int = DEFAULT_TOKENS) -> ExplorerSite:
    """Write the explorer of the study in `out` into `dest` (default ``out/explorer``).

    Args:
        out: the study's out dir.
        dest: where the site goes.
        cache: the study's stage cache when it ran with ``--cache``.
        model: the model whose tokenizer labels tokens (default: the study's, results.json ``model``).
        vocab, library, store: already-open inputs (the study passes its own);
            by default opened from the cache, the tokenizer from the study's model.
        windows: held-out windows per head page; tokens: tokens shown per window.

    Raises:
        ExploreError: `out` is not a study's out dir.
    """
    started = time.perf_counter()
    files = open_study(out, cache=cache)
    site = Path(dest) if dest is not None else files.out / "explorer"
    inputs = load_inputs(files, vocab=vocab, library=library, store=store, model=model)
    files.missing += inputs.problems
    rows = head_rows(files)
    programs = program_infos(files, {n for r in rows for n in r["used_programs"] + [r["program"]]})
    views: AttentionViews | None = None
    if inputs.store is not None:
        views = attention_views(inputs.store, used_programs(files), library=inputs.library, vocab=inputs.vocab,
                                count=windows, tokens=tokens)
    pages = [write_page(site / "index.html", f"attnc study: {files.results.get('model', '?')}",
                        index_payload(files, rows, programs, files_base=_relative(files.out, site)), depth=0)]
    for row in rows:
        pages.append(write_page(site / head_file(row["head"]), f"head {row['head']}",
                                head_payload(files, row, rows, programs, views, tokens), depth=1))
    for info in programs.values():
        pages.append(write_page(site / program_file(info.name), f"program {info.name}",
                                program_payload(files, info, rows), depth=1))
    written = pages + copy_assets(site)
    return ExplorerSite(site, pages, sum(p.stat().st_size for p in written), list(files.missing),
                        round(time.perf_counter() - started, 2))


def _relative(target: Path, start: Path) -> str:
    """`target` relative to `start` as a URL prefix ending in "/" (absolute when on another drive)."""
    import os

    try:
        return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix().rstrip("/") + "/"
    except ValueError:
        return target.resolve().as_uri() + "/"
