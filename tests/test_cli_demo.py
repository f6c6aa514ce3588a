"""`attnc demo`'s settings: the shipped corpus and programs, and its speed settings, every one overridable."""

from __future__ import annotations

from attnc.cli import build_parser
from attnc.cli.demo_cmd import DEMO_PRECISION, SHIPPED_CORPUS
from attnc.cli.study_cmd import config_from_args


def test_the_demo_runs_bfloat16_with_the_studys_measure_margin_and_each_can_be_changed():
    config = config_from_args(build_parser().parse_args(["demo"]))
    assert (config.precision, config.measure_margin) == (DEMO_PRECISION, 2.0) == ("bfloat16", 2.0)
    assert config.corpus == SHIPPED_CORPUS and config.fractions == (0.0, 0.1, 0.25)
    changed = config_from_args(build_parser().parse_args(["demo", "--precision", "float32", "--measure-margin", "1.5"]))
    assert (changed.precision, changed.measure_margin) == ("float32", 1.5)
    study = config_from_args(build_parser().parse_args(["study", "--corpus", "c.txt", "--out", "o"]))
    assert (study.precision, study.measure_margin) == ("float32", 2.0)  # the study's defaults are unchanged
