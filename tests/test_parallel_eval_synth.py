"""eval ppl and synth --offline on pools: window shards and chunks of heads on workers give one process's results."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import attnc.synth.offline as offline
from attnc.cli import main
from attnc.parallel.pools import cpu_count
from attnc.parallel.shard_worker import ShardWorker, Surrogates
from attnc.runtime.perplexity import perplexity, perplexity_on_pool
from attnc.runtime.replacement import ReplacementMap
from attnc.runtime.surrogate import install_surrogates
from attnc.synth.offline import REPORT_FILE, synthesize_offline
from attnc.synth.offline_fit import FitConfig

sys.path.insert(0, str(Path(__file__).parent))
from parallel_fixtures import build_case  # noqa: E402

FAST = FitConfig(ce_steps=40, steps=60, refit_steps=30, objective="both")
FIT_WINDOWS = 8
#: Heads per fit chunk in these tests: the tiny model's 8 heads make 3 chunks (3, 3, 2).
CHUNK_HEADS = 3
REPLACED = {(0, 1): "previous_token", (1, 2): "first_token"}


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    case = build_case(tmp_path_factory.mktemp("eval_synth"))
    heads = {f"{layer}.{head}": {"program": program} for (layer, head), program in REPLACED.items()}
    (case.root / "fits.json").write_text(json.dumps({"format": "attnc-fits/1", "heads": heads}))
    return case


@pytest.fixture
def three_chunks(monkeypatch):
    """Fit chunks of CHUNK_HEADS heads (the tiny model's heads fit in one chunk otherwise)."""
    monkeypatch.setattr(offline, "FIT_CHUNK_ELEMENTS", CHUNK_HEADS * FIT_WINDOWS * 16 * 16)


class _ReversedPool:
    """Runs tasks in this process, last first, as an out-of-order pool would finish them."""

    workers = 2

    def __init__(self, loaded):
        self.worker, self.ran = ShardWorker(loaded), []

    def map(self, tasks):
        for position in reversed(range(len(tasks))):
            self.ran.append(type(tasks[position]).__name__)
            yield self.worker.run(position, tasks[position])

    def close(self) -> None:
        pass


def _replaced_ppl(case, ids):
    replacement = ReplacementMap.from_programs(REPLACED)
    with install_surrogates(case.loaded, case.library, replacement) as handle:
        return perplexity(case.loaded, ids, batch_size=3, surrogate=handle, progress=False)


@pytest.mark.parametrize("shard_batches", [None, 1, 3])
def test_ppl_window_shards_add_up_to_one_pass(case, shard_batches):
    """Shards of whole batches give the single-process batch sums, added in the same order."""
    ids = case.windows.ids
    stock = perplexity(case.loaded, ids, batch_size=3, progress=False)
    pool = _ReversedPool(case.loaded)
    pooled = perplexity_on_pool(pool, ids, batch_size=3, shard_batches=shard_batches).result
    assert len(pool.ran) > 1 and set(pool.ran) == {"PerplexityShard"}
    assert (pooled.tokens_evaluated, pooled.n_windows) == (stock.tokens_evaluated, stock.n_windows)
    assert abs(pooled.nll_sum - stock.nll_sum) <= 1e-9 and abs(pooled.ppl - stock.ppl) <= 1e-9

    replaced = _replaced_ppl(case, ids)
    spec = Surrogates(case.lib, ReplacementMap.from_programs(REPLACED))
    with_programs = perplexity_on_pool(pool, ids, batch_size=3, surrogates=spec, shard_batches=shard_batches)
    assert abs(with_programs.result.nll_sum - replaced.nll_sum) <= 1e-9
    assert abs(replaced.nll_sum - stock.nll_sum) > 1e-3  # the programs did replace heads
    assert with_programs.failures == [] and with_programs.fallbacks == {}
    assert case.loaded.model.config._attn_implementation == "eager", "a shard must remove its surrogates"


def _ppl_cli(case, *extra: str) -> dict:
    args = ["eval", "ppl", "--model", case.model, "--corpus", str(case.root / "corpus.txt"), "--window", "16",
            "--batch-size", "3", "--split", "all", "--fits", str(case.root / "fits.json"), "--lib", str(case.lib),
            "--json", *extra]
    assert main(args) == 0
    return args


@pytest.mark.skipif(cpu_count() < 2, reason="needs 2 cores for 2 worker processes")
def test_cli_ppl_on_two_processes_equals_one_process(case, capsys):
    """The workers load the model with eval's --attn (sdpa), so their sums are the CLI's own."""
    _ppl_cli(case)
    one = json.loads(capsys.readouterr().out)
    assert "workers" not in one  # no flags: this process, the record as before
    _ppl_cli(case, "--workers", "2")
    two = json.loads(capsys.readouterr().out)
    assert two["workers"] == 2 and two["replaced_heads"] == one["replaced_heads"] != {}
    assert two["tokens_evaluated"] == one["tokens_evaluated"]
    assert abs(two["nll_sum"] - one["nll_sum"]) <= 1e-9 and abs(two["ppl"] - one["ppl"]) <= 1e-9


def test_cli_ppl_refuses_zero_workers_and_clamps_to_the_cores(case, capsys, monkeypatch):
    args = ["eval", "ppl", "--model", case.model, "--corpus", str(case.root / "corpus.txt"), "--window", "16",
            "--json"]
    assert main([*args, "--workers", "0"]) == 1
    assert "attnc eval ppl: --workers 0: need at least 1 worker" in capsys.readouterr().err
    monkeypatch.setattr("attnc.parallel.workers.cpu_count", lambda: 1)  # so clamping leaves this process
    assert main([*args, "--workers", "3"]) == 0
    captured = capsys.readouterr()
    assert "attnc eval: --workers 3: this machine has 1 cores; using 1" in captured.err
    assert json.loads(captured.out)["ppl"] > 1


def _synth(case, out: Path, pool=None):
    return synthesize_offline(case.loaded, case.windows, out_dir=out, config=FAST, max_fit_windows=FIT_WINDOWS,
                              progress=False, pool=pool)


def _undated(path: Path) -> bytes:
    """A program's bytes without its `# date:` header line (the minute each run wrote it)."""
    lines = path.read_bytes().splitlines(keepends=True)
    assert sum(line.startswith(b"# date: ") for line in lines) == 1, path
    return b"".join(line for line in lines if not line.startswith(b"# date: "))


def _same_output(one: Path, two: Path) -> None:
    """Byte-identical programs (but for the minute written), and the same report but for timings and paths."""
    files = sorted(p.name for p in one.iterdir())
    assert files == sorted(p.name for p in two.iterdir()) and len(files) > 2
    for name in files:
        if name != REPORT_FILE:
            assert _undated(two / name) == _undated(one / name), name
    reports = [json.loads((d / REPORT_FILE).read_text()) for d in (one, two)]
    for report in reports:
        report.pop("seconds"), report.pop("timings")
        report["programs"] = sorted(report["programs"])
    assert reports[0] == reports[1]


def test_synth_head_chunks_on_a_pool_write_the_single_process_programs(case, tmp_path, three_chunks):
    one = _synth(case, tmp_path / "one")
    pool = _ReversedPool(case.loaded)
    two = _synth(case, tmp_path / "two", pool)
    assert pool.ran == ["FitHeadsShard"] * 3  # 8 heads in chunks of 3, 3, 2
    assert two.fit_iou == one.fit_iou and two.heldout_iou == one.heldout_iou and one.heldout_iou
    _same_output(tmp_path / "one", tmp_path / "two")


@pytest.mark.skipif(cpu_count() < 2, reason="needs 2 cores for 2 worker processes")
def test_cli_synth_offline_on_two_processes_writes_the_same_files(case, tmp_path, three_chunks, capsys):
    """Spawned workers (1 torch thread each) fit the same chunks to the same bytes."""
    args = ["synth", "--offline", "--model", case.model, "--corpus", str(case.root / "corpus.txt"), "--window", "16",
            "--fit-windows", str(FIT_WINDOWS), "--json"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    assert main([*args, "--out", str(tmp_path / "two"), "--workers", "2"]) == 0
    _same_output(tmp_path / "one", tmp_path / "two")


def test_cli_synth_parallel_flags_are_checked(case, tmp_path, capsys, monkeypatch):
    args = ["synth", "--model", case.model, "--corpus", str(case.root / "corpus.txt"), "--window", "16",
            "--out", str(tmp_path / "out")]
    assert main([*args, "--offline", "--workers", "0"]) == 2
    assert "attnc synth: error: --workers 0: need at least 1 worker" in capsys.readouterr().err
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert main([*args, "--llm", "--workers", "2"]) == 2
    assert "--llm sends requests concurrently with --concurrency" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before any output


def test_unreachable_ray_address_is_refused_before_any_fit_or_eval(case, tmp_path, capsys):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'attnc[ray]')")
    from test_parallel_ray import _closed_port

    address = f"127.0.0.1:{_closed_port()}"
    assert main(["synth", "--offline", "--model", case.model, "--corpus", str(case.root / "corpus.txt"), "--window",
                 "16", "--out", str(tmp_path / "never"), "--ray", address]) == 2
    assert f"--ray {address}: cannot reach a Ray head node" in capsys.readouterr().err
    assert not list((tmp_path / "never").glob("*.py"))
    assert main(["eval", "ppl", "--model", case.model, "--corpus", str(case.root / "corpus.txt"), "--window", "16",
                 "--ray", address]) == 1
    assert f"--ray {address}: cannot reach a Ray head node" in capsys.readouterr().err


SIQA_ROWS = [{"context": f"Tom threw the ball {k} times.", "question": "What did the dog do?",
              "answerA": "ran after it" + " fast" * (k % 3), "answerB": "slept", "answerC": "said good dog" * (1 + k % 2),
              "correct": "ABC"[k % 3]} for k in range(7)]


@pytest.fixture(scope="module")
def siqa(case):
    path = case.root / "siqa.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in SIQA_ROWS))
    return path


@pytest.mark.parametrize("shard_batches", [None, 1, 2])
def test_qa_batches_on_a_pool_give_the_single_process_scores(case, siqa, shard_batches):
    """Shards are whole batches of the length-sorted order: the same padded batches, the same scores."""
    from attnc.runtime.qa import _read_requests, continuation_logprobs, continuation_logprobs_on_pool

    _, _, requests = _read_requests(case.loaded, "socialiqa", siqa, None)
    assert len(requests) == 21 and len({len(c) + len(k) for c, k in requests}) > 3  # lengths differ: padding
    pool = _ReversedPool(case.loaded)
    for spec, handle_of in ((None, lambda: None), (Surrogates(case.lib, ReplacementMap.from_programs(REPLACED)),
                                                   lambda: install_surrogates(case.loaded, case.library,
                                                                              ReplacementMap.from_programs(REPLACED)))):
        handle = handle_of()
        try:
            one = continuation_logprobs(case.loaded, requests, batch_size=4)
        finally:
            if handle is not None:
                handle.remove()
        pooled = continuation_logprobs_on_pool(pool, case.loaded, requests, batch_size=4, surrogates=spec,
                                               shard_batches=shard_batches)
        np.testing.assert_allclose(pooled.result, one, rtol=0, atol=1e-9)
    assert len(set(pool.ran)) == 1 and pool.ran[0] == "LogprobShard" and len(pool.ran) > 2


@pytest.mark.skipif(cpu_count() < 2, reason="needs 2 cores for 2 worker processes")
def test_cli_qa_on_two_processes_equals_one_process(case, siqa, capsys):
    args = ["eval", "qa", "--model", case.model, "--task", "socialiqa", "--data", str(siqa), "--batch-size", "2",
            "--fits", str(case.root / "fits.json"), "--lib", str(case.lib), "--json"]
    assert main(args) == 0
    one = json.loads(capsys.readouterr().out)
    assert main([*args, "--workers", "2"]) == 0
    two = json.loads(capsys.readouterr().out)
    assert two.pop("workers") == 2 and "workers" not in one
    for record in (one, two):
        record.pop("seconds")
    assert two == one and one["n"] == 7 and one["replaced_heads"]
