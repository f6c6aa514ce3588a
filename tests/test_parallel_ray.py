"""Shards as Ray tasks on actors: results equal one process's; a killed actor costs only its task."""

import json
import socket
import sys
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'attnc[ray]')")

from attnc.cli import main  # noqa: E402
from attnc.parallel.pools import PoolError  # noqa: E402
from attnc.parallel.ray_pool import RayPool, check_address  # noqa: E402
from attnc.parallel.shard_worker import ScoreShard  # noqa: E402
from attnc.runtime.extract import extract_attention  # noqa: E402
from attnc.study.mixture_run import store_heldout_by_window  # noqa: E402
from attnc.study.score_run import merge_shards, score_library, score_store_shards  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from parallel_fixtures import SHARD, build_case, store_arrays  # noqa: E402


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return build_case(tmp_path_factory.mktemp("ray"))


@pytest.fixture(scope="module")
def pool(case):
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with RayPool("auto", 2, case.model) as actors:
            yield actors
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def single(case):
    heldout = store_heldout_by_window(case.store)
    return score_library(case.store.iter_windows(), case.library.programs, case.loaded.vocab,
                         case.store.head_names, heldout)


def _assert_same(got, want):
    assert got.table.programs == want.table.programs and got.failures == want.failures
    np.testing.assert_allclose(got.table.iou_fit, want.table.iou_fit, rtol=0, atol=1e-9)
    np.testing.assert_allclose(got.table.iou_heldout, want.table.iou_heldout, rtol=0, atol=1e-9)


def test_ray_scores_and_store_equal_one_process(case, pool, single, tmp_path):
    _assert_same(score_store_shards(pool, case.store, case.lib, store_heldout_by_window(case.store)), single)
    extract_attention(case.loaded, case.windows.ids, store_dir=tmp_path / "store", batch_size=3, shard_size=SHARD,
                      progress=False, pool=pool)
    for got, want in zip(store_arrays(tmp_path / "store"), store_arrays(case.store.directory)):
        np.testing.assert_array_equal(got, want)


def test_a_killed_actor_is_restarted_and_finished_shards_are_not_redone(case, pool, single, tmp_path):
    # extraction: kill an actor once the first shard is written, while the others are queued or running
    written = []

    def kill_after_first(shard, path):
        if not written:
            ray.kill(pool.actors[0], no_restart=False)
        written.append(shard)

    extract_attention(case.loaded, case.windows.ids, store_dir=tmp_path / "store", batch_size=3, shard_size=SHARD,
                      progress=False, pool=pool, on_shard=kill_after_first)
    assert sorted(written) == list(range(case.store.n_shards))  # each shard written exactly once
    for got, want in zip(store_arrays(tmp_path / "store"), store_arrays(case.store.directory)):
        np.testing.assert_array_equal(got, want)

    # scoring: the same, on the other actor
    heldout = store_heldout_by_window(case.store)
    tasks = [ScoreShard(case.lib, tuple(case.store.head_names), heldout, store_dir=case.store.directory,
                        store_shard=k) for k in range(case.store.n_shards)]
    results = {}
    for position, shard in pool.map(tasks):
        if not results:
            ray.kill(pool.actors[1], no_restart=False)
        assert position not in results
        results[position] = shard
    _assert_same(merge_shards([results[k] for k in range(len(tasks))], case.store.head_names), single)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends: nothing listens there


def test_an_unreachable_address_is_refused_before_any_work(case, capsys):
    address = f"127.0.0.1:{_closed_port()}"
    with pytest.raises(PoolError, match="cannot reach a Ray head node"):
        check_address(address)
    with pytest.raises(PoolError, match="HOST:PORT"):
        check_address("nowhere")
    out = case.root / "never.npz"
    assert main(["score", "--model", case.model, "--store", str(case.store.directory), "--lib", str(case.lib),
                 "--out", str(out), "--ray", address]) == 2
    assert f"--ray {address}: cannot reach a Ray head node" in capsys.readouterr().err
    assert not out.exists()


def test_a_study_on_ray_gives_the_single_process_results(case, pool):
    from attnc.study.study_run import StudyConfig, run_study

    def study(out: str, with_pool):
        config = StudyConfig(corpus=case.root / "corpus.txt", out=case.root / out, programs=[case.root / "programs"],
                             model=case.model, window=16, batch_size=3, mixtures=2, mixture_search_windows=4,
                             impact_windows=2, tune_steps=2, baselines=("content_free",), fractions=(0.0, 0.25),
                             plot_heads=1, progress=False)
        return run_study(config, say=lambda text: None, pool=with_pool).results

    timing = ("stage_seconds", "stage_computed_seconds", "wall_seconds", "out", "report")
    one, many = study("one", None), study("many", pool)
    strip = lambda results, out: json_text({k: v for k, v in results.items() if k not in timing}, out)  # noqa: E731
    assert strip(many, "many") == strip(one, "one")
    assert one["sweep"] and one["mean_best_iou_heldout"] > 0
    for name in ("fit-*/fits.json", "faithful-*/fits.json", "order-*/stage.json"):  # same fits, same orders
        texts = [sorted(json_text({k: v for k, v in json.loads(p.read_text()).items() if k != "seconds"}, out)
                        for p in (case.root / out / "cache").glob(name)) for out in ("one", "many")]
        assert texts[0] and texts[0] == texts[1], name
    for name in ("scores.csv", "heads.csv", "sweep.csv"):
        assert (case.root / "many" / name).read_text() == (case.root / "one" / name).read_text(), name


def json_text(value, out: str) -> str:
    return json.dumps(value, sort_keys=True, default=str).replace(f"/{out}/", "/OUT/").replace(f"/{out}\"", "/OUT\"")


def test_eval_and_synth_shards_on_ray_equal_one_process_despite_a_killed_actor(case, pool, tmp_path, monkeypatch):
    """Perplexity shards (one actor killed after the first result) and the offline fit's chunks of heads."""
    import attnc.synth.offline as offline
    from attnc.parallel.shard_worker import PerplexityShard
    from attnc.runtime.perplexity import perplexity
    from test_parallel_eval_synth import CHUNK_HEADS, FIT_WINDOWS, _same_output, _synth

    ids = case.windows.ids
    one = perplexity(case.loaded, ids, batch_size=3, progress=False)
    tasks = [PerplexityShard(ids[first:first + 3], 3) for first in range(0, len(ids), 3)]
    results = {}
    for position, shard in pool.map(tasks):
        if not results:
            ray.kill(pool.actors[0], no_restart=False)
        assert position not in results
        results[position] = shard
    nll = 0.0
    for sums in (results[k].values for k in range(len(tasks))):
        for batch in sums:
            nll += batch
    assert abs(nll - one.nll_sum) <= 1e-9

    monkeypatch.setattr(offline, "FIT_CHUNK_ELEMENTS", CHUNK_HEADS * FIT_WINDOWS * 16 * 16)
    single = _synth(case, tmp_path / "one")
    on_ray = _synth(case, tmp_path / "two", pool)
    assert on_ray.fit_iou == single.fit_iou and on_ray.heldout_iou == single.heldout_iou
    _same_output(tmp_path / "one", tmp_path / "two")
