"""fits.json: round trip and clear errors."""

from __future__ import annotations

import json

import pytest

from attnc.study.fits_file import Fits, FitsFormatError, HeadFit, fits_from_results, read_fits, write_fits
from attnc.study.fitting import MixtureFit, SingleFit


def sample() -> Fits:
    singles = {"0.1": SingleFit("0.1", "prev", 0.8, 0.75), "2.3": SingleFit("2.3", "first", 0.5, 0.4)}
    mixtures = {"0.1": MixtureFit("0.1", ("prev", "first"), (0.7, 0.3), 0.85, 0.8)}
    return fits_from_results("smollm2-135m", 128, 200, 400, singles, mixtures)


def test_round_trip(tmp_path) -> None:
    path = tmp_path / "fits.json"
    write_fits(sample(), path)
    back = read_fits(path)
    assert back == sample()
    data = json.loads(path.read_text())
    assert data["format"] == "attnc-fits/1" and data["heads"]["0.1"]["mixture"]["weights"] == [0.7, 0.3]
    assert "mixture" not in data["heads"]["2.3"]
    assert [p.name for p in tmp_path.iterdir()] == ["fits.json"]  # no temp file left


def write_raw(tmp_path, mutate) -> str:
    path = tmp_path / "fits.json"
    write_fits(sample(), path)
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data))
    return str(path)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format="attnc-fits/9"), "unknown format"),
        (lambda d: d["heads"]["0.1"]["mixture"].update(weights=[0.7, 0.2]), "must sum to 1"),
        (lambda d: d["heads"]["0.1"]["mixture"].update(weights=[1.2, -0.2]), "negative weight"),
        (lambda d: d["heads"]["0.1"]["mixture"].update(weights=[1.0]), "as many weights"),
        (lambda d: d["heads"].update({"attn3": d["heads"]["0.1"]}), "layer.head"),
        (lambda d: d["heads"]["2.3"].pop("iou_fit"), "missing field 'iou_fit'"),
        (lambda d: d["heads"]["2.3"].update(iou_heldout=1.5), r"\[0, 1\]"),
        (lambda d: d.update(window="128"), "window: expected int"),
    ],
)
def test_bad_files_are_rejected_with_the_field_named(tmp_path, mutate, message) -> None:
    with pytest.raises(FitsFormatError, match=message):
        read_fits(write_raw(tmp_path, mutate))


def test_write_refuses_bad_weights_and_keeps_old_file(tmp_path) -> None:
    path = tmp_path / "fits.json"
    write_fits(sample(), path)
    bad = sample()
    bad.heads["9.9"] = HeadFit("x", 0.1, 0.1, MixtureFit("9.9", ("x", "y"), (0.5, 0.6), 0.1, 0.1))
    with pytest.raises(FitsFormatError, match="sum to 1"):
        write_fits(bad, path)
    assert read_fits(path) == sample()


def test_not_json(tmp_path) -> None:
    path = tmp_path / "fits.json"
    path.write_text("{oops")
    with pytest.raises(FitsFormatError, match="not valid JSON"):
        read_fits(path)
