"""The study's stage functions on their own (attnc/study/study_stages.py)."""

import json
from pathlib import Path

from attnc.study.study_stages import compile_stage

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"


def test_compile_stage_replaces_a_torn_library(tmp_path):
    """A run killed mid-compile leaves `lib` without a manifest: the re-run compiles afresh."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "half_written.py").write_text("def half(")
    record = compile_stage(tmp_path, [PROGRAMS / "previous_token.py", PROGRAMS / "self_token.py"], "numpy")
    assert record == {"n_programs": 2, "failed": {}}
    manifest = json.loads((lib / "manifest.json").read_text())
    assert not (lib / "half_written.py").exists()
    assert len(manifest["programs"]) == 2
