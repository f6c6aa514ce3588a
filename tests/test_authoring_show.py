"""`attnc show`: a program next to a head's attention, as text and PNG, with the IoU."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from attnc.authoring.render import GRID_MAX_TOKENS, render_png, render_text
from attnc.authoring.show import compare_with_head, token_label
from attnc.cli import show_cmd
from attnc.dsl import load_program, run_reference
from attnc.runtime.extract import iter_attention
from attnc.runtime.models import tiny_model
from attnc.study.iou import iou_reference

PROGRAMS = Path(__file__).resolve().parent.parent / "programs"
TEXT = 'Lily said, "Can I play?" Max ran (fast).\nThe end.'


@pytest.fixture(scope="module")
def tiny():
    return tiny_model(seed=1)


def _show(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    show_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["show", *argv])
    return args.func(args)


def test_comparison_matches_the_model_and_the_metric(tiny):
    program = load_program(PROGRAMS / "previous_token.py")
    comparison = compare_with_head(program, tiny, (1, 2), TEXT)
    ids = tiny.tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    assert comparison.ids == ids
    _, attn = next(iter_attention(tiny, np.array([ids]), heads=[(1, 2)]))
    np.testing.assert_allclose(comparison.attention, attn[0, 0], atol=1e-7)
    np.testing.assert_array_equal(comparison.program_matrix, run_reference(program, ids, tiny.vocab))
    assert comparison.iou == pytest.approx(iou_reference(attn[0, 0], comparison.program_matrix))
    assert 0.0 < comparison.iou < 1.0
    assert comparison.labels[2] == "␣said" and "\\n" in comparison.labels


def test_show_cli_prints_grid_and_iou_and_writes_png(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(show_cmd, "load_model", lambda name: tiny)
    png = tmp_path / "img" / "show.png"
    assert _show([str(PROGRAMS / "previous_token.py"), "--model", "tiny", "--head", "1.2", "--text", TEXT,
                  "--out", str(png)]) == 0
    out = capsys.readouterr().out
    iou = compare_with_head(load_program(PROGRAMS / "previous_token.py"), tiny, (1, 2), TEXT).iou
    assert f"IoU = {iou:.4f}" in out and f"wrote {png}" in out
    lines = out.splitlines()
    row2 = next(line for line in lines if line.startswith("   2 ␣said"))
    assert ".@." in row2  # previous token: the heaviest shade on key 1 of row 2
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_long_windows_list_top_keys(tiny):
    comparison = compare_with_head(load_program(PROGRAMS / "previous_token.py"), tiny, (0, 1), TEXT * 3)
    assert len(comparison.ids) > GRID_MAX_TOKENS
    text = render_text(comparison)
    assert "program: 4 '" in text and "head:" in text and text.endswith(f"IoU = {comparison.iou:.4f}")


def test_show_errors_are_reported(tiny, monkeypatch, capsys):
    monkeypatch.setattr(show_cmd, "load_model", lambda name: tiny)
    program = str(PROGRAMS / "previous_token.py")
    assert _show([program, "--head", "9.0", "--text", TEXT]) == 1
    assert "outside the model" in capsys.readouterr().err
    assert _show([program, "--head", "1.2", "--text", ""]) == 1
    assert "no tokens" in capsys.readouterr().err
    assert _show(["no_such_program", "--head", "1.2", "--text", TEXT]) == 1
    assert "no such file" in capsys.readouterr().err


def test_token_labels():
    assert token_label("Ġcat") == "␣cat" and token_label("Ċ") == "\\n" and token_label("ĊĊ") == "\\n\\n"


@pytest.mark.realmodel
def test_show_on_smollm2_previous_token_head(tmp_path, capsys):
    png = tmp_path / "show.png"
    text = "The cat sat on the mat. The dog sat on the log."
    assert _show([str(PROGRAMS / "previous_token.py"), "--model", "smollm2-135m", "--head", "16.0",
                  "--text", text, "--out", str(png), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["head"] == "16.0" and report["model"] == "smollm2-135m" and png.is_file()
    assert report["iou"] > 0.4  # 16.0 is SmolLM2's sharpest previous-token head
