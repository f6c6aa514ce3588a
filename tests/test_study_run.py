"""`attnc study` end to end on a tiny model saved as a local Hugging Face directory:
the report's contents, the stage cache (a re-run redoes only what changed), and bad input
refused before any long stage."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from attnc.cli import main
from attnc.runtime.corpus import make_windows, read_corpus
from attnc.runtime.heads import parse_head
from attnc.runtime.models import load_model, tiny_model
from attnc.runtime.perplexity import perplexity
from attnc.study.study_run import StudyConfig, StudyError, run_study

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
STORY = ("Tom had a red ball. He threw the ball to his dog, and the dog ran after it. "
         "\"Good dog!\" said Tom. The dog was happy. ")
REQUIRED_KEYS = {"model", "corpus", "window", "n_windows_fit", "n_windows_heldout", "n_programs",
                 "n_programs_selected", "n_heads", "mean_best_iou_heldout", "mean_best_mixture_iou_heldout",
                 "ppl_baseline", "sweep", "qa", "tokens_evaluated", "stage_seconds"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    loaded = tiny_model("llama", n_layers=2, n_heads=4)
    loaded.model.save_pretrained(root / "model")
    loaded.tokenizer.save_pretrained(root / "model")
    (root / "corpus.txt").write_text("\n\n".join([STORY * 3] * 6))
    progs = root / "programs"
    progs.mkdir()
    for name in ("first_token", "previous_token", "uniform_causal", "self_token"):
        (progs / f"{name}.py").write_text((PROGRAMS / f"{name}.py").read_text())
    qa = root / "piqa.jsonl"
    qa.write_text("\n".join(json.dumps({"goal": f"How do you open a jar {i}?", "sol1": "Twist the lid.",
                                        "sol2": "Eat the lid.", "label": i % 2}) for i in range(6)))
    return root


def _config(root: Path, out: str, **changes) -> StudyConfig:
    settings = dict(corpus=root / "corpus.txt", out=root / out, programs=[root / "programs"], model=str(root / "model"),
                    window=16, batch_size=4, mixtures=2, mixture_search_windows=4, impact_windows=4,
                    plot_heads=2, tune_steps=10, progress=False)
    settings.update(changes)
    return StudyConfig(**settings)


def test_study_writes_the_report(workdir, capsys):
    args = ["study", "--model", str(workdir / "model"), "--corpus", str(workdir / "corpus.txt"), "--window", "16",
            "--programs", str(workdir / "programs"), "--out", str(workdir / "out"), "--mixtures", "2",
            "--mixture-search-windows", "4", "--impact-windows", "4", "--batch-size", "4",
            "--qa", f"piqa={workdir / 'piqa.jsonl'}", "--json"]
    assert main(args) == 0
    results = json.loads(capsys.readouterr().out)
    assert REQUIRED_KEYS <= set(results)
    out = workdir / "out"
    assert json.loads((out / "results.json").read_text())["sweep"] == results["sweep"]
    for name in ("report.md", "heads.csv", "sweep.csv", "scores.csv", "qa.csv", "iou_heatmap.png",
                 "ppl_vs_fraction.png", "explorer/index.html", "explorer/heads/1.3.html"):
        assert (out / name).stat().st_size > 0, name
    assert len(list(out.glob("head_*.png"))) == 3
    assert results["n_heads"] == 8 and results["n_programs"] == 8  # 4 given + the 4 content-free baselines
    assert [p["fraction"] for p in results["sweep"]] == [0.0, 0.1, 0.25, 0.5, 0.75, 1.0]
    assert [p["n_heads_replaced"] for p in results["sweep"]] == [0, 1, 2, 4, 6, 8]
    assert results["sweep"][0]["ppl_increase_pct"] == 0.0
    assert 0.0 < results["mean_best_iou_heldout"] <= results["mean_best_mixture_iou_heldout"] + 1e-9 <= 1.0 + 1e-9
    assert set(results["qa"]) == {"piqa"} and results["qa"]["piqa"]["n"] == 6

    # Baselines: every method swept on the same fractions, each in its own measured order.
    assert set(results["baselines"]) == {"programs", "content_free", "mean_ablation"}
    for name, points in results["baselines"].items():
        assert [p["fraction"] for p in points] == [0.0, 0.1, 0.25, 0.5, 0.75, 1.0], name
        assert points[0]["ppl"] == results["ppl_baseline"]
    assert [p["ppl"] for p in results["baselines"]["programs"]] == [p["ppl"] for p in results["sweep"]]
    # the default order: each head's measured KL(stock || replaced), for every method
    assert results["baseline_orders"] == {"programs": "measured_kl", "content_free": "measured_kl",
                                          "mean_ablation": "measured_kl"}
    assert {(v["fraction"], v["baseline"]) for v in results["baseline_verdict"]} == {
        (f, b) for f in (0.1, 0.25) for b in ("content_free", "mean_ablation")}
    assert isinstance(results["programs_beat_baselines"], bool)
    # each baseline is also swept in the programs' order; the verdict holds the programs against the better
    other = results["baselines_in_programs_order"]
    assert set(other) == {"content_free", "mean_ablation"}
    for v in results["baseline_verdict"]:
        own = next(p for p in results["baselines"][v["baseline"]] if p["fraction"] == v["fraction"])
        alt = next(p for p in other[v["baseline"]] if p["fraction"] == v["fraction"])
        assert v["baseline_increase_pct"] == min(own["ppl_increase_pct"], alt["ppl_increase_pct"])
        assert v["baseline_order"] == ("programs" if alt["ppl"] < own["ppl"] else "own")
    assert "Programs against baselines" in (out / "report.md").read_text()
    assert 0.0 <= results["faithful"]["mean_output_error"] <= results["faithful"]["mean_output_error_best_program"] + 1e-9
    # one joint tuning per tuned point (10%: 1 head, 25%: 2 heads), each no worse than where it started
    assert [t["n_heads"] for t in results["tuning"]] == [1, 2]
    assert all(t["kl_end"] <= t["kl_start"] for t in results["tuning"])

    # The content-free point at 25% is the model with those programs installed, in that method's order.
    from attnc.runtime.library import load_library
    from attnc.runtime.replacement import ReplacementMap
    from attnc.study.attribution import replacement_prefix
    from attnc.study.sweep import replaced_perplexity

    cache = out / "cache"
    orders = [json.loads(p.read_text()) for p in cache.glob("order-*/stage.json")]
    table_programs = json.loads(next(cache.glob("fit-*/fits.json")).read_text())
    assert table_programs
    loaded_model = load_model(str(workdir / "model"))
    library = load_library(next(cache.glob("compile-*/lib")), vocab=loaded_model.vocab)
    from attnc.study.baselines import content_free_map
    from attnc.study.scoring import ScoreTable

    table = ScoreTable.load(next(cache.glob("score-*/scores.npz")))
    target = content_free_map(table)
    assert {m[0][0] for m in target.heads.values()} <= {"content_free_uniform", "content_free_first",
                                                        "content_free_self", "content_free_previous"}
    windows_ = make_windows(read_corpus(workdir / "corpus.txt"), loaded_model.tokenizer, window=16)
    quarter = next(p for p in results["baselines"]["content_free"] if p["fraction"] == 0.25)
    matches = [replaced_perplexity(loaded_model, library, replacement_prefix(o["order"], target, 2),
                                   windows_.heldout_ids, fraction=0.25, progress=False).ppl for o in orders]
    assert any(abs(m - quarter["ppl"]) < 1e-9 * quarter["ppl"] for m in matches)

    # The baseline is the stock model's perplexity on the held-out windows, measured independently.
    loaded = load_model(str(workdir / "model"))
    windows = make_windows(read_corpus(workdir / "corpus.txt"), loaded.tokenizer, window=16)
    stock = perplexity(loaded, windows.heldout_ids, progress=False)
    assert results["ppl_baseline"] == pytest.approx(stock.ppl, rel=1e-6)
    assert results["tokens_evaluated"] == stock.tokens_evaluated == windows.heldout_ids.size - len(windows.heldout_ids)


def test_rerun_redoes_only_what_changed(workdir):
    said: list[str] = []
    run_study(_config(workdir, "cached"), say=said.append)
    assert any("[extract] running" in s for s in said)
    said.clear()
    run_study(_config(workdir, "cached"), say=said.append)
    assert not any("running" in s for s in said), said

    # Another program: compile and everything after it reruns; the model's attention is reused.
    extra = workdir / "programs2"
    extra.mkdir()
    for path in (workdir / "programs").glob("*.py"):
        (extra / path.name).write_text(path.read_text())
    (extra / "two_back.py").write_text('def two_back(q: int, k: int, w: Window) -> float:\n'
                                       '    """Two tokens back."""\n    return 1.0 if k == q - 2 else 0.0\n')
    said.clear()
    run = run_study(_config(workdir, "cached", programs=[extra]), say=said.append)
    ran = {s.split("]")[0].strip("[") for s in said if "running" in s}
    assert {"compile", "score", "fit"} <= ran and "extract" not in ran
    assert run.results["n_programs"] == 9

    # A crash inside a stage leaves no finished record: the next run redoes that stage only.
    for record in (workdir / "cached" / "cache").glob("fit-*/stage.json"):
        record.unlink()
    said.clear()
    run_study(_config(workdir, "cached"), say=said.append)
    assert [s for s in said if "running" in s] == ["[fit] running ..."]


def test_iou_order_replaces_the_best_explained_heads_first(workdir):
    run = run_study(_config(workdir, "by_iou", order="iou", fractions=(0.0, 0.25), use="mixture", baselines=()),
                    say=lambda s: None)
    fits = json.loads(next((workdir / "by_iou" / "cache").glob("fit-*/fits.json")).read_text())["heads"]
    used = {h: (f.get("mixture") or f)["iou_heldout"] for h, f in fits.items()}
    replaced = run.results["sweep"][1]
    assert replaced["n_heads_replaced"] == 2
    heads = json.loads(next((workdir / "by_iou" / "cache").glob("order-*/stage.json")).read_text())["order"][:2]
    assert sorted(used.values(), reverse=True)[:2] == sorted((used[h] for h in heads), reverse=True)


def test_bad_input_fails_before_long_stages(workdir, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty|no text|tokens"):
        run_study(_config(workdir, "bad1", corpus=empty), say=lambda s: None)
    with pytest.raises(ValueError, match="context|longer"):
        run_study(_config(workdir, "bad2", window=100_000), say=lambda s: None)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.py").write_text("import os\n")
    with pytest.raises(StudyError, match="no valid program"):
        run_study(_config(workdir, "bad3", programs=[broken]), say=lambda s: None)
    assert not list((workdir / "bad3" / "cache").glob("extract-*")), "extraction ran for an empty library"
    with pytest.raises(StudyError, match="unknown task"):
        run_study(_config(workdir, "bad4", qa={"trivia": workdir / "piqa.jsonl"}), say=lambda s: None)
    with pytest.raises(StudyError, match="no such file"):
        run_study(_config(workdir, "bad5", qa={"piqa": tmp_path / "missing.jsonl"}), say=lambda s: None)
    with pytest.raises(StudyError, match="outside"):
        run_study(_config(workdir, "bad6", fractions=(0.0, 1.5)), say=lambda s: None)
    with pytest.raises(StudyError, match="--measure-heads -1"):
        run_study(_config(workdir, "bad7", measure_heads=-1), say=lambda s: None)


def test_measured_order_screens_when_few_heads_are_replaced(workdir):
    """With at most 25% of the 8 heads replaced, each measured order measures the 4 heads the
    estimate finds cheapest and ranks them first; with every head swept, all are measured."""
    from attnc.study.study_run import _measured_heads

    assert _measured_heads(_config(workdir, "x"), 8) is None  # the default sweep reaches 100%
    assert _measured_heads(_config(workdir, "x", fractions=(0.0, 0.25), tune_steps=0), 8) == 4
    assert _measured_heads(_config(workdir, "x", fractions=(0.0, 0.25), measure_heads=0), 8) is None
    assert _measured_heads(_config(workdir, "x", fractions=(0.0, 0.25), measure_heads=3), 8) == 3
    # a smaller margin: 1.5 x 2 replaced heads; rounded up (1.2 x 2 = 2.4 -> 3); 4 x 2 is every head
    assert _measured_heads(_config(workdir, "x", fractions=(0.0, 0.25), tune_steps=0, measure_margin=1.5), 8) == 3
    assert _measured_heads(_config(workdir, "x", fractions=(0.0, 0.25), tune_steps=0, measure_margin=1.2), 8) == 3
    assert _measured_heads(_config(workdir, "x", fractions=(0.0, 0.25), tune_steps=0, measure_margin=4), 8) is None
    with pytest.raises(StudyError, match="--measure-margin 0.5: give 1 or more"):
        run_study(_config(workdir, "x", measure_margin=0.5))
    run_study(_config(workdir, "screened", fractions=(0.0, 0.25), tune_steps=0, baselines=("mean_ablation",)),
              say=lambda s: None)
    records = [json.loads(p.read_text()) for p in (workdir / "screened" / "cache").glob("order-*/stage.json")]
    assert len(records) == 2  # programs and mean ablation
    for record in records:
        assert len(record["measured_heads"]) == 4 and len(record["order"]) == 8
        assert set(record["order"][:4]) == set(record["measured_heads"])
        measured = [record["values"][h] for h in record["order"][:4]]
        assert measured == sorted(measured)
    assert json.loads((workdir / "screened" / "results.json").read_text())["order_measured_heads"] == 4


def test_cli_reports_bad_input_in_one_line(workdir, tmp_path, capsys):
    args = ["study", "--model", str(workdir / "model"), "--corpus", str(tmp_path / "none.txt"), "--window", "16",
            "--out", str(tmp_path / "out")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("attnc study: error:") and "Traceback" not in err


def test_study_tunes_program_constants_and_sweeps_the_new_programs(workdir):
    """With programs that have constants, each tuned set gets its own new programs, used by its sweep point."""
    progs = workdir / "programs_constants"
    progs.mkdir(exist_ok=True)
    sharp = workdir / "model_sharp"  # peaked attention, so that programs other than uniform are chosen
    loaded = tiny_model("llama", n_layers=2, n_heads=4)
    with torch.no_grad():
        for layer in loaded.model.model.layers:
            layer.self_attn.q_proj.weight.mul_(12.0)
    loaded.model.save_pretrained(sharp)
    loaded.tokenizer.save_pretrained(sharp)
    for name in ("decay_070", "sink_previous", "previous_token"):
        (progs / f"{name}.py").write_text((PROGRAMS / f"{name}.py").read_text())
    run = run_study(_config(workdir, "constants", programs=[progs], baselines=(), fractions=(0.0, 0.25), model=str(sharp),
                            tune_steps=6, tune_windows=4, tune_constants_lr=0.1,
                            tune_constants_min_weight=0.0), say=lambda s: None)
    results = run.results
    tuning = results["tuning"]
    assert tuning and all(t["kl_end"] <= t["kl_start"] for t in tuning)
    cache = run.out / "cache"
    records = [json.loads(p.read_text()) for p in cache.glob("tune-*/stage.json")]
    sources = {name: text for r in records for name, text in (r.get("sources") or {}).items()}
    assert sources, "no constants were tuned"
    from attnc.dsl import parse_program

    for name, text in sources.items():  # each new program is valid DSL whose entry is its name
        assert parse_program(text).name == name and "_tuned_l" in name
    # the 25% sweep point is the model with that set's tuned mixtures and new programs installed
    from attnc.runtime.library import load_library
    from attnc.runtime.overlay import OverlaySource
    from attnc.runtime.replacement import ReplacementMap
    from attnc.study.sweep import replaced_perplexity

    loaded = load_model(str(sharp))
    library = load_library(next(cache.glob("compile-*/lib")), vocab=loaded.vocab)
    record = max(records, key=lambda r: len(r["tuned"]))
    replacement = ReplacementMap({parse_head(h): tuple((n, w) for n, w in m) for h, m in record["tuned"].items()})
    source = OverlaySource.from_sources(library, record["sources"], loaded.vocab)
    windows = make_windows(read_corpus(workdir / "corpus.txt"), loaded.tokenizer, window=16)
    ppl = replaced_perplexity(loaded, source, replacement, windows.heldout_ids, fraction=0.25, progress=False).ppl
    quarter = next(p for p in results["sweep"] if p["fraction"] == 0.25)
    assert ppl == pytest.approx(quarter["ppl"], rel=1e-9)


def test_a_bfloat16_study_is_keyed_apart_and_close_to_float32(workdir):
    """--precision bfloat16 reruns every stage that runs the model (not the compile) and lands near float32."""
    float32 = run_study(_config(workdir, "precision"))
    said: list[str] = []
    bf16 = run_study(_config(workdir, "precision", precision="bfloat16"), say=said.append)
    ran = {s.split("]")[0].strip("[") for s in said if "running" in s}
    assert {"extract", "score", "order programs", "sweep programs"} <= ran and "compile" not in ran
    assert bf16.results["model_info"]["precision"] == "bfloat16" and "precision" not in float32.results["model_info"]
    assert bf16.results["ppl_baseline"] != float32.results["ppl_baseline"]
    assert bf16.results["ppl_baseline"] == pytest.approx(float32.results["ppl_baseline"], rel=0.02)
    assert bf16.results["mean_best_iou_heldout"] == pytest.approx(float32.results["mean_best_iou_heldout"], abs=0.05)
    with pytest.raises(StudyError, match="precision 'half'"):
        run_study(_config(workdir, "precision", precision="half"))
