"""From ``--workers N`` and ``--ray ADDRESS`` to a shard pool (or none: this process)."""

from __future__ import annotations

from typing import Callable

from attnc.parallel.pools import PoolError, ProcessPool, ShardPool, cpu_count


def resolve_workers(requested: int | None, say: Callable[[str], None], *, cores: int | None = None) -> int:
    """Local worker processes to use: all cores by default, at most the cores.

    Raises:
        PoolError: `requested` < 1.
    """
    cores = cores or cpu_count()
    if requested is None:
        return cores
    if requested < 1:
        raise PoolError(f"--workers {requested}: need at least 1 worker (this machine has {cores} cores)")
    if requested > cores:
        say(f"--workers {requested}: this machine has {cores} cores; using {cores}")
        return cores
    return requested


def make_pool(model: str, *, workers: int | None = None, ray: str | None = None, loaded=None,
              say: Callable[[str], None] = print, attn_implementation: str = "eager") -> ShardPool | None:
    """The pool for these options; None when the work is best done in this process (one worker).

    Args:
        model: what workers load (`load_model`'s name or directory).
        workers: ``--workers`` (None: all cores here; with Ray: the cluster's CPUs).
        ray: ``--ray`` (None: local processes; "local", "auto" or HOST:PORT: Ray actors).
        loaded: this process's copy of the model (a local pool runs a single task on it).
        attn_implementation: the attention the workers' model runs (extraction needs "eager").

    Raises:
        PoolError: --workers < 1, Ray not installed, or a cluster that cannot be reached.
    """
    if ray is not None:
        from attnc.parallel.ray_pool import RayPool

        if workers is not None and workers < 1:
            raise PoolError(f"--workers {workers}: need at least 1 Ray worker")
        if ray == "local" and workers is not None:
            workers = resolve_workers(workers, say)
        return RayPool(ray, workers, model, attn_implementation=attn_implementation)
    count = resolve_workers(workers, say)
    return ProcessPool(count, model, loaded=loaded, attn_implementation=attn_implementation) if count > 1 else None
