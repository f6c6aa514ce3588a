"""attnc synth end to end on a tiny model: --llm against the loopback fake server, --offline, and bad input."""

import json
from pathlib import Path

import pytest

from attnc.cli import main
from attnc.dsl import load_program
from attnc.runtime.models import tiny_model
from fake_openai_server import FakeOpenAIServer, Reply, scripted

STORY = ("Tom had a red ball. He threw the ball to his dog, and the dog ran after it. "
         "\"Good dog!\" said Tom. The dog was happy. ")

GOOD = '''```python
def sink_and_previous(q: int, k: int, w: Window) -> float:
    """Half on the first token, half on the previous one."""
    return 0.5 * (k == 0) + 0.5 * (k == q - 1)
```'''
HOSTILE = '''```python
def escape(q: int, k: int, w: Window) -> float:
    return w.__class__.__name__
```'''


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    loaded = tiny_model("llama", n_layers=1, n_heads=2, n_kv_heads=1)
    loaded.model.save_pretrained(root / "model")
    loaded.tokenizer.save_pretrained(root / "model")
    (root / "corpus.txt").write_text("\n\n".join([STORY * 3] * 4))
    return root


def common(root: Path, out: Path) -> list[str]:
    return ["--model", str(root / "model"), "--corpus", str(root / "corpus.txt"), "--window", "16",
            "--heads", "0.1", "--out", str(out), "--json"]


def test_llm_mode_keeps_the_good_candidate_and_rejects_the_hostile_one(model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the reply cache goes under the working directory
    with FakeOpenAIServer(scripted([Reply(contents=[GOOD, HOSTILE, "no code here"])])) as server:
        code = main(["synth", "--llm", "--base-url", server.url, "--llm-model", "fake", "--candidates", "3",
                     "--max-requests", "3"] + common(model_dir, tmp_path / "out"))
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["totals"]["accepted"] == 1
    assert report["totals"]["rejected"]["no_code"] == 1
    assert report["totals"]["rejected"]["validation"] + report["totals"]["rejected"]["syntax"] == 1
    written = list((tmp_path / "out").glob("*.py"))
    assert len(written) == 1
    assert load_program(written[0]).form == "native"


def test_llm_mode_without_an_endpoint_names_the_flags(model_dir, tmp_path, capsys, monkeypatch):
    for var in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "ATTNC_LLM_MODEL"):
        monkeypatch.delenv(var, raising=False)
    assert main(["synth", "--llm"] + common(model_dir, tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert "--base-url" in err and "OPENAI_API_KEY" in err


def test_offline_is_the_default_without_an_endpoint(model_dir, tmp_path, capsys, monkeypatch):
    for var in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    assert main(["synth"] + common(model_dir, tmp_path / "out")) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_programs"] >= 1
    for path in (tmp_path / "out").glob("*.py"):
        load_program(path)


def test_offline_fit_windows(model_dir, tmp_path, capsys, monkeypatch):
    """--fit-windows sets how many fit windows the offline fit samples; < 1 is refused before any work."""
    for var in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    assert main(["synth", "--offline", "--fit-windows", "0"] + common(model_dir, tmp_path / "bad")) == 2
    assert "--fit-windows must be >= 1" in capsys.readouterr().err
    assert main(["synth", "--offline", "--fit-windows", "2"] + common(model_dir, tmp_path / "out")) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_fit_windows"] == 2


@pytest.mark.parametrize("flag, bad, good, field, default", [
    ("--max-terms", "-1", "3", "max_total_terms", 12),        # caps each program's weighted terms
    ("--profile-length", "-2", "6", "profile_length", 0),   # a distance profile; 0: none
])
def test_offline_fit_knobs(flag, bad, good, field, default, model_dir, tmp_path, capsys, monkeypatch):
    """An offline fit option reaches every fit_heads call (the other knobs keep their defaults);
    a negative value is refused before any work."""
    from attnc.synth.offline_fit import FitConfig

    for var in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    assert main(["synth", "--offline", flag, bad] + common(model_dir, tmp_path / "bad")) == 2
    assert f"{flag} must be >= 0" in capsys.readouterr().err
    seen = []
    import attnc.synth.offline_fit as offline_fit

    real = offline_fit.fit_heads  # what every chunk's task runs, in this process or a worker
    monkeypatch.setattr(offline_fit, "fit_heads", lambda *a, **k: seen.append(a[6]) or real(*a, **k))  # a[6]: config
    assert main(["synth", "--offline", flag, good, "--fit-windows", "2"] + common(model_dir, tmp_path / "out")) == 0
    capsys.readouterr()
    expected = FitConfig(**{field: int(good)}, objective="both")  # --objective's default
    assert seen and all(c == expected for c in seen)
    assert getattr(FitConfig(), field) == default
