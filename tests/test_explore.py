"""`attnc explore`: the generated site's files and embedded data (no browser), and bad input.

A synthetic study of SmolLM2's shape (30 layers x 9 heads, 128-token windows;
see explore_study.py) stands in for the demo's output.
"""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from attnc.cli import main
from attnc.explore import ExploreError, build_explorer
from attnc.explore.attention_views import decode_matrix
from attnc.explore.highlight import highlight_python
from attnc.runtime.library import load_library
from attnc.runtime.store import AttentionStore
from attnc.study.iou import iou_reference
from explore_study import synthetic_study

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
#: Well under the 20 MB the issue allows for the demo's site.
MAX_SITE_BYTES = 12_000_000


def page_data(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    found = re.search(r'<script type="application/json" id="data">(.*?)</script>', text, re.S)
    assert found, f"{path}: no embedded data"
    return json.loads(found.group(1))


@pytest.fixture(scope="module")
def smollm_shaped(tmp_path_factory):
    """A 30 x 9 synthetic study and its explorer."""
    out = tmp_path_factory.mktemp("explore") / "study"
    vocab = synthetic_study(out)
    site = build_explorer(out, vocab=vocab)
    return out, site, vocab


def test_site_has_every_page_and_stays_small(smollm_shaped):
    out, site, _ = smollm_shaped
    assert site.directory == out / "explorer" and site.index.is_file()
    index = page_data(site.index)
    assert (index["n_layers"], index["n_heads"]) == (30, 9) and len(index["heads"]) == 270
    assert {r["head"] for r in index["heads"]} == {f"{l}.{h}" for l in range(30) for h in range(9)}
    for row in index["heads"]:
        assert (site.directory / "heads" / f"{row['head']}.html").is_file()
        assert row["impact"] is not None and row["rank"] is not None and 0 < row["used_iou"] <= 1
    for program in index["programs"]:
        assert (site.directory / "programs" / f"{program['name']}.html").is_file()
    assert sum(p["best"] for p in index["programs"]) == 270
    assert index["impact_available"] and index["qa"]["piqa"]["n"] == 50
    assert set(index["sweep"]["series"]) == {"programs", "content_free", "mean_ablation"}
    assert (site.directory / "assets" / "explorer.js").is_file() and (site.directory / "assets" / "explorer.css").is_file()
    size = sum(p.stat().st_size for p in site.directory.rglob("*") if p.is_file())
    assert size == site.n_bytes < MAX_SITE_BYTES, f"site is {size / 1e6:.1f} MB"
    assert "http://" not in site.index.read_text() and "https://" not in site.index.read_text()


def test_head_page_data_matches_the_store(smollm_shaped):
    out, site, vocab = smollm_shaped
    data = page_data(site.directory / "heads" / "4.2.html")
    assert data["head"] == "4.2" and data["prev"] == "4.1" and data["next"] == "4.3"
    assert [p["name"] for p in data["programs"]] == data["row"]["used_programs"]
    assert all(p["source_html"] and p["doc"] for p in data["programs"])
    windows, view = data["windows"], data["view"]
    assert len(windows) == 3 == len(view["neural"]) == len(view["program"]) == len(view["iou"])
    store = AttentionStore.open(next((out / "cache").glob("extract-*/store")))
    library = load_library(next((out / "cache").glob("compile-*/lib")), vocab=vocab)
    held = set(store.meta["windows"]["heldout_indices"])
    for k, shown in enumerate(windows):
        assert shown["window"] in held and len(shown["labels"]) == data["tokens"] == 64 and shown["n_tokens"] == 128
        neural = store.get(shown["window"])[store.head_position(4, 2)].astype(np.float64)
        np.testing.assert_allclose(decode_matrix(view["neural"][k], 64), neural[:64, :64], atol=0.5 / 255 + 1e-3)
        ids = store.ids()[list(store.window_indices).index(shown["window"])]
        got = library.matrices(data["row"]["used_programs"], ids[None])
        program = sum(w * got[n][0] for n, w in zip(data["row"]["used_programs"], data["row"]["used_weights"]))
        np.testing.assert_allclose(decode_matrix(view["program"][k], 64), program[:64, :64], atol=0.5 / 255 + 1e-9)
        assert view["iou"][k] == pytest.approx(iou_reference(neural, program), abs=1e-4)  # on the whole window
    ids = store.ids()[list(store.window_indices).index(windows[0]["window"])]
    assert windows[0]["labels"][1].replace("␣", "Ġ") == vocab.tokens[int(ids[1])].replace("\n", "\\n")
    assert set(view["stats"]) == {"neural", "program"} and 0 <= view["stats"]["neural"]["first"] <= 1


def test_program_page_lists_its_heads(smollm_shaped):
    _, site, _ = smollm_shaped
    index = page_data(site.index)
    data = page_data(site.directory / "programs" / "previous_token.html")
    users = {u["head"] for u in data["users"]}
    assert users == {r["head"] for r in index["heads"] if "previous_token" in r["used_programs"] + [r["program"]]}
    assert len(data["scores"]) == 270 and all(0 <= v <= 1 for v in data["scores"])
    assert data["scores"][4 * 9 + 2] == pytest.approx(users_iou(site, "4.2", "previous_token"), abs=1e-4)
    assert "<span class=k>def</span>" in data["program"]["source_html"]


def users_iou(site, head: str, program: str) -> float:
    """The program's held-out IoU on `head`, as scores.csv has it."""
    import csv

    with open(site.directory.parent / "scores.csv") as f:
        return next(float(r["iou_heldout"]) for r in csv.DictReader(f) if r["head"] == head and r["program"] == program)


def test_missing_attention_qa_and_baselines_are_said_not_fatal(tmp_path):
    out = tmp_path / "study"
    vocab = synthetic_study(out, n_layers=2, n_heads=3, window=16, qa=False, baselines=False)
    shutil.rmtree(next((out / "cache").glob("extract-*")))
    site = build_explorer(out, tmp_path / "site", vocab=vocab)
    index = page_data(site.index)
    assert index["qa"] is None and any("no QA" in n for n in index["notes"])
    assert list(index["sweep"]["series"]) == ["programs"] and any("baselines" in n for n in index["notes"])
    assert any("extract stage" in n for n in index["notes"])
    head = page_data(site.directory / "heads" / "1.2.html")
    assert head["view"] is None and head["windows"] == []
    assert any("attention store is not on disk" in n for n in head["notes"])
    assert head["programs"][0]["source_html"], "the library is still there: sources shown"
    assert index["files_base"] == "../study/"


def test_cli_writes_the_site_and_says_what_is_missing(tmp_path, capsys):
    out = tmp_path / "study"
    synthetic_study(out, n_layers=1, n_heads=2, window=16)
    assert main(["explore", str(out), "--out", str(tmp_path / "site"), "--windows", "2", "--tokens", "8"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {tmp_path / 'site' / 'index.html'}" in printed
    assert "could not be loaded for its tokenizer" in printed  # the synthetic model is not a real one
    head = page_data(tmp_path / "site" / "heads" / "0.1.html")
    assert len(head["windows"]) == 2 and head["windows"][0]["labels"][0].startswith("#")
    assert head["view"]["program"] == [] and any("tokenizer" in n for n in head["notes"])


def test_bad_input_is_one_clear_error(tmp_path, capsys):
    with pytest.raises(ExploreError, match="no such directory"):
        build_explorer(tmp_path / "nowhere")
    (tmp_path / "results.json").write_text("{}")
    with pytest.raises(ExploreError, match="not a study directory.*no heads.csv"):
        build_explorer(tmp_path)
    (tmp_path / "heads.csv").write_text("head,layer\n0.0,0\n")
    with pytest.raises(ExploreError, match="no sweep"):
        build_explorer(tmp_path)
    assert main(["explore", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("attnc explore: error:") and "nowhere" in err and "Traceback" not in err


def test_highlighted_source_keeps_the_text():
    import html

    for path in sorted(PROGRAMS.glob("*.py")):
        source = path.read_text()
        marked = highlight_python(source)
        assert html.unescape(re.sub(r"<[^>]+>", "", marked)) == source, path.name
    assert "<span class=d>f</span>" in highlight_python("def f(q):\n    return 1  # one\n")
    assert highlight_python("def (:\n  '''") == html.escape("def (:\n  '''", quote=False)


def test_a_real_tiny_study_explored_from_disk(tmp_path, capsys):
    """The study writes the site; `attnc explore` rebuilds it from disk with the model's own tokenizer."""
    from attnc.runtime.models import tiny_model
    from attnc.study.study_run import StudyConfig, run_study

    loaded = tiny_model("llama", n_layers=2, n_heads=2)
    loaded.model.save_pretrained(tmp_path / "model")
    loaded.tokenizer.save_pretrained(tmp_path / "model")
    (tmp_path / "corpus.txt").write_text("Tom had a red ball. He threw the ball to his dog. " * 20)
    run_study(StudyConfig(corpus=tmp_path / "corpus.txt", out=tmp_path / "out", model=str(tmp_path / "model"),
                          programs=[PROGRAMS / "previous_token.py", PROGRAMS / "first_token.py"], window=16,
                          batch_size=4, mixtures=2, mixture_search_windows=2, order="iou", fractions=(0.0, 0.5),
                          plot_heads=0, progress=False), say=lambda s: None)
    written = page_data(tmp_path / "out" / "explorer" / "heads" / "1.1.html")
    assert main(["explore", str(tmp_path / "out"), "--out", str(tmp_path / "site")]) == 0
    assert "not shown" not in capsys.readouterr().out.split("\n", 1)[1]
    rebuilt = page_data(tmp_path / "site" / "heads" / "1.1.html")
    assert rebuilt["windows"] == written["windows"] and rebuilt["view"] == written["view"]
    assert rebuilt["notes"] == [] and len(rebuilt["view"]["program"]) == 3
    assert not any(label.startswith("#") for label in rebuilt["windows"][0]["labels"])
    index = page_data(tmp_path / "site" / "index.html")
    assert not index["impact_available"] and any("held-out IoU" in n for n in index["notes"])


def test_embedded_json_cannot_end_its_script_element():
    from attnc.explore.pages import page_html

    tricky = {"text": "</script><!--<script> ĠThe \u2028 'q' \"k\""}
    page = page_html("t", tricky, depth=1)
    assert page.count("</script>") == 2 and "<!--" not in page
    found = re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S)
    assert json.loads(found.group(1)) == tricky
