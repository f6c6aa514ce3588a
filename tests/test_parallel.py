"""Local worker processes: --workers is checked, and a sharded run equals the single-process run."""

import sys
from pathlib import Path

import numpy as np
import pytest

from attnc.cli import main
from attnc.parallel.pools import PoolError, ProcessPool, cpu_count
from attnc.parallel.workers import make_pool, resolve_workers
from attnc.runtime.extract import extract_attention
from attnc.study.mixture_run import store_heldout_by_window
from attnc.study.score_run import (merge_shards, model_attention_batches, score_library, score_model_shards,
                                   score_shard, score_store_shards)
from attnc.study.scoring import ScoreTable

sys.path.insert(0, str(Path(__file__).parent))
from parallel_fixtures import SHARD, build_case, store_arrays  # noqa: E402


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return build_case(tmp_path_factory.mktemp("parallel"))


def test_workers_default_to_the_cores_and_are_clamped_or_refused():
    said = []
    assert resolve_workers(None, said.append, cores=2) == 2
    assert resolve_workers(1, said.append, cores=2) == 1 and not said
    assert resolve_workers(5, said.append, cores=2) == 2
    assert said == ["--workers 5: this machine has 2 cores; using 2"]
    with pytest.raises(PoolError, match="at least 1"):
        resolve_workers(0, said.append, cores=2)
    assert make_pool("m", workers=1) is None  # one worker: this process, no pool


def test_cli_refuses_zero_workers(case, capsys):
    code = main(["score", "--model", case.model, "--store", str(case.store.directory), "--lib", str(case.lib),
                 "--out", str(case.root / "x.npz"), "--workers", "0"])
    assert code == 2
    assert "attnc score: error: --workers 0: need at least 1 worker" in capsys.readouterr().err


def test_merged_shards_equal_one_pass(case):
    """The merge is exact by construction: the same batch sums, added in the same order."""
    heldout = store_heldout_by_window(case.store)
    whole = score_library(case.store.iter_windows(), case.library.programs, case.loaded.vocab,
                          case.store.head_names, heldout)
    shards = [score_shard([case.store.read_shard(k)], case.library.programs, case.loaded.vocab,
                          case.store.head_names, heldout) for k in reversed(range(case.store.n_shards))]
    merged = merge_shards(shards[::-1], case.store.head_names)
    np.testing.assert_array_equal(merged.table.iou_fit, whole.table.iou_fit)
    np.testing.assert_array_equal(merged.table.iou_heldout, whole.table.iou_heldout)
    assert merged.table.programs == whole.table.programs and merged.failures == whole.failures


@pytest.mark.skipif(cpu_count() < 2, reason="needs 2 cores for 2 worker processes")
def test_two_processes_give_the_single_process_scores_and_store(case, tmp_path):
    heldout = store_heldout_by_window(case.store)
    single = score_library(case.store.iter_windows(), case.library.programs, case.loaded.vocab,
                           case.store.head_names, heldout)
    direct = score_library(model_attention_batches(case.loaded, case.windows.ids, batch_size=3),
                           case.library.programs, case.loaded.vocab, case.store.head_names, case.windows.split)
    with ProcessPool(2, case.model) as pool:
        from_store = score_store_shards(pool, case.store, case.lib, heldout)
        from_model = score_model_shards(pool, case.windows.ids, case.store.head_names, case.lib,
                                        case.windows.split, batch_size=3, shard_windows=SHARD)
        extract_attention(case.loaded, case.windows.ids, store_dir=tmp_path / "store", batch_size=3,
                          shard_size=SHARD, progress=False, pool=pool)
        from attnc.study.mixture_run import mixture_ious, store_heldout

        split, _ = store_heldout(case.store)
        sets = [{head: {case.library.names[0]: 0.5, case.library.names[-1]: 0.5} for head in case.store.head_names}]
        ious_pooled, _ = mixture_ious(case.store, sets, case.library.programs, case.loaded.vocab, split, pool=pool,
                                      library_dir=case.lib)
    ious_single, _ = mixture_ious(case.store, sets, case.library.programs, case.loaded.vocab, split)
    np.testing.assert_allclose(ious_pooled, ious_single, rtol=0, atol=1e-9)
    for got, want in ((from_store, single), (from_model, direct)):
        assert got.table.programs == want.table.programs
        np.testing.assert_allclose(got.table.iou_fit, want.table.iou_fit, rtol=0, atol=1e-9)
        np.testing.assert_allclose(got.table.iou_heldout, want.table.iou_heldout, rtol=0, atol=1e-9)
    for got, want in zip(store_arrays(tmp_path / "store"), store_arrays(case.store.directory)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.slow  # starts 2 worker processes again (~25 s on a loaded 2-core machine)
def test_cli_score_with_workers_writes_the_single_process_table(case, capsys):
    args = ["score", "--model", case.model, "--store", str(case.store.directory), "--lib", str(case.lib)]
    assert main([*args, "--out", str(case.root / "one.npz"), "--workers", "1"]) == 0
    assert main([*args, "--out", str(case.root / "two.npz"), "--workers", "2", "--json"]) == 0
    assert '"workers": ' in capsys.readouterr().out
    one, two = ScoreTable.load(case.root / "one.npz"), ScoreTable.load(case.root / "two.npz")
    np.testing.assert_allclose(two.iou_fit, one.iou_fit, rtol=0, atol=1e-9)
    np.testing.assert_allclose(two.iou_heldout, one.iou_heldout, rtol=0, atol=1e-9)


def test_ray_missing_is_an_error_naming_the_extra(monkeypatch):
    from attnc.parallel.ray_pool import require_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without Ray gives `import ray`
    with pytest.raises(PoolError, match=r"pip install 'attnc\[ray\]'"):
        require_ray()
    with pytest.raises(PoolError, match="attnc\\[ray\\]"):
        make_pool("m", ray="local")


class _DyingPool:
    """Runs shard tasks in this process; dies (as a killed worker would) after `survive` of them."""

    def __init__(self, loaded, survive: int | None = None):
        from attnc.parallel.shard_worker import ShardWorker

        self.worker, self.survive, self.ran = ShardWorker(loaded), survive, []

    def map(self, tasks):
        for position, task in enumerate(tasks):
            if self.survive is not None and len(self.ran) >= self.survive:
                raise PoolError("a local worker process died (test)")
            self.ran.append(task.store_shard)
            yield self.worker.run(position, task)  # ScoreShard and MixtureIouShard both name a store shard


def test_scoring_resumes_from_the_finished_shards(case, tmp_path):
    """A pool that dies mid-stage keeps the shards it finished: the rerun scores only the rest,
    and the table is the single-process one."""
    assert case.store.n_shards >= 2
    heldout = store_heldout_by_window(case.store)
    single = score_library(case.store.iter_windows(), case.library.programs, case.loaded.vocab,
                           case.store.head_names, heldout)
    checkpoint = tmp_path / "shards"
    dying = _DyingPool(case.loaded, survive=1)
    with pytest.raises(PoolError):
        score_store_shards(dying, case.store, case.lib, heldout, checkpoint=checkpoint)
    assert dying.ran == [0] and len(list(checkpoint.glob("shard-*.pkl"))) == 1
    (checkpoint / "shard-00001.pkl").write_bytes(b"torn")  # a torn file is scored again, not trusted
    rerun = _DyingPool(case.loaded)
    resumed = score_store_shards(rerun, case.store, case.lib, heldout, checkpoint=checkpoint)
    assert rerun.ran == list(range(1, case.store.n_shards))
    np.testing.assert_allclose(resumed.table.iou_fit, single.table.iou_fit, rtol=0, atol=1e-9)
    np.testing.assert_allclose(resumed.table.iou_heldout, single.table.iou_heldout, rtol=0, atol=1e-9)


def test_mixture_ious_on_a_pool_equal_one_pass(case):
    """The fit's exact-IoU pass summed per store shard by workers gives the single-process IoUs."""
    from attnc.study.mixture_run import mixture_ious, store_heldout

    heldout, _ = store_heldout(case.store)
    names = case.library.names
    heads = case.store.head_names
    sets = [{head: {names[h % len(names)]: 0.7, names[(h + 1) % len(names)]: 0.3} for h, head in enumerate(heads)},
            {heads[0]: {names[0]: 1.0}}]
    one, counts = mixture_ious(case.store, sets, case.library.programs, case.loaded.vocab, heldout)
    pool = _DyingPool(case.loaded)
    pooled, pooled_counts = mixture_ious(case.store, sets, case.library.programs, case.loaded.vocab, heldout,
                                         pool=pool, library_dir=case.lib)
    assert pool.ran == list(range(case.store.n_shards)) and case.store.n_shards >= 2
    np.testing.assert_array_equal(pooled_counts, counts)
    np.testing.assert_allclose(pooled, one, rtol=0, atol=1e-9)
    assert np.isnan(pooled[1][:, 1:]).all() and not np.isnan(pooled[0]).any()
