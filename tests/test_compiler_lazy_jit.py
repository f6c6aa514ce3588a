"""Loop kernels are JIT-compiled at first use, not at compile time (issue 14: cold compile of LLM libraries).

- compiling (program and library) imports no kernel module and starts no numba compile;
- the probe's plain-Python run of a kernel equals its numba run;
- kernels import the shared helpers (loop_runtime.py) instead of carrying copies;
- a kernel numba cannot type, found at first use, runs interpreted with the reason;
- the LLM-style generator (benchmarks/paper_loop_programs.py) gives distinct, valid, numba-compiled programs.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ lives beside attnc/ in the source tree
    sys.path.insert(0, str(ROOT))

from attnc.compiler import WindowError, build_library, compile_program  # noqa: E402
from attnc.compiler.kernel_store import kernel_key  # noqa: E402
from attnc.compiler.loop_runtime import RUNTIME_IMPORT, RUNTIME_VERSION  # noqa: E402
from attnc.compiler.probing import library_probe, probe_ids, probe_vocab  # noqa: E402
from attnc.dsl import run_reference  # noqa: E402
from attnc.dsl.errors import ProgramRuntimeError  # noqa: E402
from attnc.dsl.loader import parse_program  # noqa: E402
from benchmarks.paper_loop_programs import paper_loop_sources  # noqa: E402


def _numba_compiles(monkeypatch) -> list[str]:
    """Record every numba compile started from now on (by dispatcher name)."""
    from numba.core import dispatcher

    started: list[str] = []
    original = dispatcher.Dispatcher.compile

    def compile_spy(self, sig):
        started.append(self.py_func.__name__)
        return original(self, sig)

    monkeypatch.setattr(dispatcher.Dispatcher, "compile", compile_spy)
    return started


def _assert_same_outcome(plain, jitted) -> None:
    """Both runs give the same matrices, or both fail on the same window."""
    def outcome(run):
        try:
            return run()
        except WindowError as exc:
            return exc.window

    a, b = outcome(plain), outcome(jitted)
    if isinstance(a, int) or isinstance(b, int):
        assert a == b
    else:
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def _reference(program, ids, vocab) -> np.ndarray:
    try:
        return run_reference(program, ids[0], vocab)[None]
    except ProgramRuntimeError as exc:
        raise WindowError(program.name, 0, ids[0], exc) from exc


def _programs(count: int, seed: int = 3):
    return {name: parse_program(text, f"{name}.py") for name, text in paper_loop_sources(count, seed).items()}


def test_compiling_a_library_jit_compiles_nothing(tmp_path, monkeypatch):
    sources = paper_loop_sources(6, seed=11)
    for name, text in sources.items():
        (tmp_path / f"{name}.py").write_text(text)
    started = _numba_compiles(monkeypatch)
    report = build_library([tmp_path], tmp_path / "lib")
    assert [r.backend for r in report.records] == ["numba"] * 6
    assert all(r.sparse_k is None or r.sparse_k >= 1 for r in report.records)
    assert started == []
    loaded = [m for m in sys.modules if m.startswith("attnc_kernel_")]
    assert not any(kernel_key(text) in m for text in sources.values() for m in loaded)


def test_probe_run_equals_the_numba_run():
    vocab, batches = library_probe([])
    for program in list(_programs(3).values()):
        compiled = compile_program(program)
        assert compiled.backend == "numba" and compiled._kernel is None
        for ids, words in ((probe_ids(), probe_vocab()), (batches[1][:, :96], vocab)):
            _assert_same_outcome(lambda: compiled.probe_evaluate(ids, words), lambda: compiled.evaluate(ids, words))
        assert compiled._kernel is not None  # evaluate JIT-compiled it


def test_probe_run_equals_the_interpreter():
    vocab = probe_vocab()
    for program in list(_programs(4, seed=5).values()):
        compiled = compile_program(program)
        for b in range(2):
            ids = probe_ids()[b:b + 1]
            _assert_same_outcome(lambda: compiled.probe_evaluate(ids, vocab),
                                 lambda: _reference(program, ids, vocab))


def test_kernels_import_the_shared_helpers():
    compiled = compile_program(next(iter(_programs(1).values())), probe=False)
    source = compiled.kernel_source
    assert source.count(RUNTIME_IMPORT) == 1 and f"# runtime {RUNTIME_VERSION}" in source
    assert "def _rule_row" not in source and "def _lookup" not in source


def test_a_kernel_numba_cannot_type_runs_interpreted_at_first_use():
    program = next(iter(_programs(1, seed=8).values()))
    compiled = compile_program(program)
    assert compiled.backend == "numba"
    broken_source = compiled.kernel_source.replace("    n = ids.shape[1]\n", "    n = ids.shape[1]\n    zz = 'a' + n\n")
    assert broken_source != compiled.kernel_source
    broken = replace(compiled, kernel_source=broken_source, _kernel=None, messages=())
    ids = probe_ids()[:2]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = broken.evaluate(ids, probe_vocab())
    assert broken.backend == "interpreted"
    assert any("numba could not compile" in m for m in broken.messages)
    assert any("numba could not compile" in str(w.message) for w in caught)
    for b in range(2):
        np.testing.assert_allclose(out[b], run_reference(program, ids[b], probe_vocab()), atol=1e-12)


def test_the_generator_gives_distinct_valid_loop_programs():
    sources = paper_loop_sources(60, seed=0)
    assert len(sources) == 60 and len(set(sources.values())) == 60
    assert paper_loop_sources(60, seed=0) == sources  # reproducible
    kernels = set()
    for name, text in sources.items():
        compiled = compile_program(parse_program(text, f"{name}.py"), probe=False)
        assert compiled.backend == "numba", (name, compiled.messages)
        kernels.add(compiled.kernel_source)
    assert len(kernels) >= 55  # structure differs, not only literals


@pytest.mark.slow
def test_probe_run_equals_the_numba_run_on_many_programs():
    vocab, batches = library_probe([])
    for compiled in (compile_program(p) for p in _programs(40, seed=21).values()):
        _assert_same_outcome(lambda: compiled.probe_evaluate(batches[0], vocab),
                             lambda: compiled.evaluate(batches[0], vocab))


def _cached_kernel_files(library_dir: Path) -> set[str]:
    """Kernel files of the library that numba's on-disk cache holds an entry for (in the library's own subdir)."""
    from numba.core import config
    from numba.core.caching import _CacheLocator

    files = sorted((library_dir / "kernels").glob("k_*.py"))
    if not files:
        return set()
    cache = Path(config.CACHE_DIR) / _CacheLocator.get_suitable_cache_subpath(str(files[0]))
    return {f.stem for f in files if any(cache.glob(f"{f.stem}.kernel-*.nbi"))}


def _library(tmp_path: Path, count: int, seed: int) -> Path:
    for name, text in paper_loop_sources(count, seed=seed).items():
        (tmp_path / f"{name}.py").write_text(text)
    build_library([tmp_path], tmp_path / "lib")
    return tmp_path / "lib"


def test_precompile_fills_numbas_cache(tmp_path):
    from attnc.compiler.jit_warmup import precompile_library

    library = _library(tmp_path, 2, seed=41)
    assert _cached_kernel_files(library) == set()
    report = precompile_library(library, workers=1)
    assert len(report.compiled) == 2 and not report.failed and report.workers == 1
    assert len(_cached_kernel_files(library)) == 2
    with pytest.raises(ValueError, match="workers"):
        precompile_library(library, workers=0)


@pytest.mark.slow
def test_precompile_in_two_processes(tmp_path):
    from attnc.compiler.jit_warmup import precompile_library

    library = _library(tmp_path, 4, seed=43)
    report = precompile_library(library, workers=2)
    assert len(report.compiled) == 4 and report.workers == 2
    assert len(_cached_kernel_files(library)) == 4
