"""The library artifact: attnc compile, load_library, tamper checks, failures, duplicates, numba cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from attnc.cli import main as cli_main
from attnc.compiler import compile_program, evaluate_library
from attnc.compiler.library_format import LibraryError
from attnc.compiler.probing import probe_ids, probe_vocab
from attnc.dsl import parse_program, run_reference
from attnc.dsl.program import source_sha256
from attnc.runtime.library import load_library
from test_compiler_fixtures import PROGRAMS_DIR

STARTERS = ["previous_token.py", "decay_070.py", "induction.py", "same_sentence.py", "recent_punctuation.py"]

BROKEN = "def broken(q: int, k: int, w: Window) -> float:\n    return open('/etc/passwd')\n"
TWO_TOKEN_CONCAT = (
    "def two_token_concat(q: int, k: int, w: Window) -> float:\n"
    "    return 1.0 if (w.tok[k] + w.tok[q]) == 'Ġthe' + 'Ġcat' or k == q else 0.0\n"
)
SELF_COPY = "def self_copy(q: int, k: int, w: Window) -> float:\n    return 2.0 if q == k else 0.0\n"
FAILS_ON_LONG = (
    "def fails_on_long(q: int, k: int, w: Window) -> float:\n"
    "    return 1.0 if w.ids[q + 30] > 0 and k == q else float(k == q)\n"
)


@pytest.fixture(scope="module")
def program_dir(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("programs")
    for name in STARTERS:
        shutil.copy(PROGRAMS_DIR / name, src / name)
    (src / "broken.py").write_text(BROKEN)
    (src / "two_token_concat.py").write_text(TWO_TOKEN_CONCAT)
    (src / "self_copy.py").write_text(SELF_COPY)
    (src / "zz_self_token.py").write_text((PROGRAMS_DIR / "self_token.py").read_text())
    return src


@pytest.fixture(scope="module")
def library_dir(program_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lib") / "lib"
    assert cli_main(["compile", str(program_dir), "-o", str(out), "--json"]) == 0
    return out


def _copy(library_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "lib"
    shutil.copytree(library_dir, target)
    return target


def test_manifest_records_every_program(library_dir):
    manifest = json.loads((library_dir / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and manifest["attnc_version"]
    records = {r["name"]: r for r in manifest["programs"]}
    assert records["previous_token"]["backend"] == "numpy" and records["previous_token"]["status"] == "ok"
    assert records["recent_punctuation"]["backend"] == "numba"
    assert records["broken"]["status"] == "error" and records["broken"]["messages"]
    fallback = records["two_token_concat"]
    assert fallback["status"] == "ok" and fallback["backend"] == "interpreted"
    assert any("two different tokens" in m or "two-token" in m or "two tokens" in m for m in fallback["messages"])
    assert records["self_token"]["duplicate_of"] == "self_copy" and records["self_copy"]["duplicate_of"] is None
    assert records["previous_token"]["duplicate_of"] is None
    assert sorted(p.name for p in (library_dir / "sources").iterdir()) == sorted(
        f"{n}.py" for n, r in records.items() if r["status"] == "ok")
    for name, record in records.items():
        if record["status"] == "ok":
            assert record["sha256"] and record["compile_s"] >= 0


def test_loaded_library_matches_reference(library_dir):
    library = load_library(library_dir, vocab=probe_vocab(), lazy=False)
    assert "broken" not in library.names and "broken" in library.errors
    ids = probe_ids()[:3]
    got = library.matrices(library.names, ids)
    for name in library.names:
        program = library.programs[name].program
        ref = np.stack([run_reference(program, row, probe_vocab()) for row in ids])
        np.testing.assert_allclose(got[name], ref, atol=1e-6, err_msg=name)
        assert np.allclose(got[name].sum(-1), 1.0) and not np.triu(got[name], 1).any()


def test_tampered_source_is_refused(library_dir, tmp_path):
    lib = _copy(library_dir, tmp_path)
    path = lib / "sources" / "previous_token.py"
    path.write_text(path.read_text().replace("q - 1", "q - 2"))
    with pytest.raises(LibraryError, match="sha256 differs"):
        load_library(lib)


def _replace_source(lib: Path, name: str, text: str) -> None:
    """Put `text` in place of program `name`'s stored source, with a manifest hash that matches it."""
    (lib / "sources" / f"{name}.py").write_text(text)
    manifest = json.loads((lib / "manifest.json").read_text())
    for record in manifest["programs"]:
        if record["name"] == name:
            record["sha256"] = source_sha256(text)
    (lib / "manifest.json").write_text(json.dumps(manifest))


def test_tampered_source_with_matching_hash_is_revalidated(library_dir, tmp_path):
    lib = _copy(library_dir, tmp_path)
    _replace_source(lib, "previous_token", BROKEN.replace("broken", "previous_token"))
    library = load_library(lib, vocab=probe_vocab())
    with pytest.raises(LibraryError, match="no longer validates"):
        library.matrices(["previous_token"], probe_ids()[:1])


def test_a_library_compiled_in_this_process_is_not_validated_twice(library_dir, tmp_path, monkeypatch):
    """The programs `attnc compile` validated here are reused by load_library (same source hash):
    no second parse, the same matrices."""
    import attnc.runtime.library as library_module

    lib = _copy(library_dir, tmp_path)
    fresh = load_library(lib, vocab=probe_vocab())
    want = fresh.matrices(["previous_token", "decay_070"], probe_ids()[:2])
    monkeypatch.setattr(library_module, "parse_program", lambda *a, **k: pytest.fail("validated again"))
    reused = load_library(lib, vocab=probe_vocab())
    got = reused.matrices(["previous_token", "decay_070"], probe_ids()[:2])
    for name in want:
        np.testing.assert_array_equal(np.asarray(got[name]), np.asarray(want[name]))
    assert reused.programs["previous_token"].kernel_dir == lib / "kernels"


def test_a_reused_program_must_have_the_manifests_name(library_dir, tmp_path):
    """Another program's source (and hash) under a record's name is refused, reused or not."""
    lib = _copy(library_dir, tmp_path)
    _replace_source(lib, "previous_token", (lib / "sources" / "self_copy.py").read_text())
    library = load_library(lib, vocab=probe_vocab())
    with pytest.raises(LibraryError, match="defines 'self_copy'"):
        library.matrices(["previous_token"], probe_ids()[:1])


def test_tampered_kernel_is_refused(library_dir, tmp_path):
    lib = _copy(library_dir, tmp_path)
    kernel = next((lib / "kernels").glob("k_*.py"))
    kernel.write_text(kernel.read_text() + "\nimport os\n")
    with pytest.raises(LibraryError, match="kernel"):
        load_library(lib)


def test_unexpected_kernel_file_is_refused(library_dir, tmp_path):
    lib = _copy(library_dir, tmp_path)
    (lib / "kernels" / "k_0000000000000000.py").write_text("import os\n")
    with pytest.raises(LibraryError, match="unexpected files"):
        load_library(lib)


def test_shipped_numba_cache_is_refused(library_dir, tmp_path):
    lib = _copy(library_dir, tmp_path)
    (lib / "kernels" / "__pycache__").mkdir()
    (lib / "kernels" / "__pycache__" / "k_x.kernel-1.py311.nbi").write_bytes(b"\x80\x04pickle")
    with pytest.raises(LibraryError, match="no caches or pickles"):
        load_library(lib)


def test_unknown_version_is_refused(library_dir, tmp_path):
    lib = _copy(library_dir, tmp_path)
    manifest = json.loads((lib / "manifest.json").read_text())
    manifest["format_version"] = 99
    (lib / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(LibraryError, match="format version 99"):
        load_library(lib)


def test_not_a_library_is_refused(tmp_path):
    with pytest.raises(LibraryError, match="no manifest.json"):
        load_library(tmp_path)


def test_strict_exit_status(program_dir, tmp_path):
    assert cli_main(["compile", str(program_dir), "-o", str(tmp_path / "a")]) == 0
    assert cli_main(["compile", str(program_dir), "-o", str(tmp_path / "b"), "--strict"]) == 1
    clean = tmp_path / "clean"
    clean.mkdir()
    shutil.copy(PROGRAMS_DIR / "previous_token.py", clean)
    assert cli_main(["compile", str(clean), "-o", str(tmp_path / "c"), "--strict"]) == 0


def test_runtime_failure_is_reported_per_program():
    programs = [compile_program(parse_program(src)) for src in (FAILS_ON_LONG, SELF_COPY)]
    # n = 20: `w.ids[q + 30]` is out of range on every window -> reported, first window 0.
    result = evaluate_library(programs, probe_ids()[:, :20], probe_vocab())
    assert set(result.matrices) == {"self_copy"}
    assert "fails_on_long" in result.errors
    assert "window 0" in result.errors["fails_on_long"] and "IndexError" in result.errors["fails_on_long"]
    assert result.exceptions["fails_on_long"].window == 0
    np.testing.assert_allclose(result.matrices["self_copy"], np.broadcast_to(np.eye(20), (6, 20, 20)))


def test_numba_cache_is_reused_by_a_second_process_and_kept_out_of_the_library(tmp_path):
    src = tmp_path / "p"
    src.mkdir()
    shutil.copy(PROGRAMS_DIR / "recent_punctuation.py", src)
    lib = tmp_path / "lib"
    cache = tmp_path / "numba-cache"
    script = (
        "import sys\n"
        "from attnc.compiler.library_build import build_library\n"
        "from attnc.runtime.library import load_library\n"
        "from attnc.compiler.probing import probe_vocab, probe_ids\n"
        "if sys.argv[2] == 'build':\n"
        "    build_library([sys.argv[3]], sys.argv[1])\n"
        "lib = load_library(sys.argv[1], vocab=probe_vocab())\n"
        "lib.matrices(['recent_punctuation'], probe_ids())\n"
        "stats = lib.programs['recent_punctuation'].kernel().stats\n"
        "print(sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    first = subprocess.run([sys.executable, "-c", script, str(lib), "build", str(src)], capture_output=True,
                           text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr
    assert list(cache.rglob("*.nbi")), "numba wrote no cache index"
    no_pickles = [p.name for p in lib.rglob("*") if p.suffix in (".nbi", ".nbc", ".pkl", ".pickle")
                  or p.name == "__pycache__"]
    assert no_pickles == []
    second = subprocess.run([sys.executable, "-c", script, str(lib), "load"], capture_output=True, text=True,
                            env=env, timeout=300)
    assert second.returncode == 0, second.stderr
    hits, misses = map(int, second.stdout.split())
    assert hits >= 1 and misses == 0, second.stdout


def test_compile_cli_json_report(program_dir, tmp_path, capsys):
    assert cli_main(["compile", str(program_dir / "previous_token.py"), str(program_dir / "broken.py"),
                     "-o", str(tmp_path / "lib"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["ok"], report["failed"]) == (1, 1)
    broken = next(p for p in report["programs"] if p["status"] == "error")
    assert broken["source_file"].endswith("broken.py") and "open" in " ".join(broken["messages"])
