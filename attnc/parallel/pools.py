"""Shard pools: run a list of shard tasks on workers and yield (position, result) as each finishes.

A pool's workers are `ShardWorker`s bound to one model; each loads it (and the
libraries its tasks name) once. `ProcessPool` runs them in local processes
(spawned, so no torch state is forked); `attnc.parallel.ray_pool.RayPool` as
Ray actors. Callers merge results by position, so completion order never
changes a result.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Iterator, Protocol, Sequence


class PoolError(RuntimeError):
    """A worker pool that cannot start or that lost a worker it cannot replace."""


class ShardPool(Protocol):
    """What the extract and score stages need of a pool."""

    workers: int

    def map(self, tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Run every task; yield (its position in `tasks`, its result) as each finishes."""

    def close(self) -> None:
        """Stop the workers."""


def cpu_count() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


_WORKER = None


def _start_worker(model: str, threads: int, attn_implementation: str) -> None:
    global _WORKER
    from attnc.parallel.shard_worker import ShardWorker

    _WORKER = ShardWorker(model, threads=threads, attn_implementation=attn_implementation)
    _WORKER.ready()


def _run_task(position: int, task) -> tuple[int, Any]:
    return _WORKER.run(position, task)


class ProcessPool:
    """`workers` local processes, each with its own `ShardWorker` for `model`, started on first use.

    Torch and numba threads are split between them (cores // workers each), so N workers
    on N cores do not oversubscribe the machine. A single task (before any
    worker started) runs in this process, on `loaded` when given: starting
    workers would cost more than it.

    Args:
        workers: processes (>= 1).
        model: what each worker loads (`load_model`'s name or directory).
        loaded: this process's copy of that model, for single tasks.
        attn_implementation: the attention the workers' model runs ("eager" reads attention
            weights, as extraction needs; eval runs the caller's choice, so results match it).
    """

    def __init__(self, workers: int, model: str, loaded=None, *, attn_implementation: str = "eager"):
        self.workers = workers
        self.model = model
        self.attn_implementation = attn_implementation
        self._loaded = loaded
        self._executor: ProcessPoolExecutor | None = None
        self._local = None

    def _start(self) -> ProcessPoolExecutor:
        if self._executor is None:
            threads = max(1, cpu_count() // self.workers)
            self._executor = ProcessPoolExecutor(max_workers=self.workers,
                                                 mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_start_worker, initargs=(self.model, threads, self.attn_implementation))
        return self._executor

    def map(self, tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        if len(tasks) == 1 and self._executor is None:
            from attnc.parallel.shard_worker import ShardWorker

            self._local = self._local or ShardWorker(self._loaded if self._loaded is not None else self.model,
                                                     attn_implementation=self.attn_implementation)
            yield self._local.run(0, tasks[0])
            return
        executor = self._start()
        pending = {executor.submit(_run_task, position, task) for position, task in enumerate(tasks)}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        except BrokenProcessPool as error:
            raise PoolError(f"a local worker process died ({error}); rerun with fewer --workers "
                            "(with --ray, Ray restarts dead workers)") from None
        finally:
            for future in pending:
                future.cancel()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
