"""Shard tasks as Ray tasks on actors that hold the model and libraries (`pip install 'attnc[ray]'`).

Ray does the scheduling, the transfer and the retries: each actor is created
with ``max_restarts`` and ``max_task_retries``, so a task whose actor dies is
run again on the restarted actor, and tasks that finished are never rerun (the
caller already holds their results, and extraction shards are files).
"""

from __future__ import annotations

import socket
from typing import Any, Iterator, Sequence

from attnc.parallel.pools import PoolError

#: How often Ray restarts a dead actor, and retries a task of a dead actor.
MAX_RESTARTS = 3
MAX_TASK_RETRIES = 3
#: Seconds `check_address` waits for a TCP connection to the head node.
CONNECT_TIMEOUT_S = 5.0


def require_ray():
    """The `ray` module, or an error that names the extra to install."""
    try:
        import ray
    except ImportError:
        raise PoolError("--ray needs Ray, which is not installed: pip install 'attnc[ray]'") from None
    return ray


def check_address(address: str) -> None:
    """Refuse a cluster address that cannot be reached, before any work (ray.init would wait long).

    Args:
        address: "HOST:PORT" or "ray://HOST:PORT" (the head node's GCS or client port).

    Raises:
        PoolError: malformed, or nothing answers there within CONNECT_TIMEOUT_S.
    """
    bare = address.removeprefix("ray://")
    host, sep, port = bare.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise PoolError(f"--ray {address}: expected auto, local or HOST:PORT of a Ray head node "
                        "(e.g. 10.0.0.5:6379, as `ray start --head` prints)")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise PoolError(f"--ray {address}: cannot reach a Ray head node there ({error}); start one with "
                        "`ray start --head` or run with --ray local") from None


def connect(address: str, workers: int | None) -> bool:
    """Connect this process to Ray; True when it started a local Ray instance (close shuts it down).

    Args:
        address: "local" (start Ray on this machine with `workers` CPUs), "auto"
            (the cluster `ray start` left running here) or HOST:PORT.
    """
    ray = require_ray()
    if address not in ("auto", "local"):
        check_address(address)
    if ray.is_initialized():
        return False
    if address == "local":
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        return True
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    except ConnectionError as error:
        raise PoolError(f"--ray {address}: {error}; start a cluster with `ray start --head` or run with "
                        "--ray local") from None
    return False


class RayPool:
    """`workers` Ray actors, each a `ShardWorker` for `model`.

    Args:
        address: see `connect`.
        workers: actors (default: the cluster's CPUs).
        model: what each actor loads (`load_model`'s name or directory; a path
            must exist on every node, as must the stage cache for a study).
        num_gpus: GPUs per actor (0: CPU).
        attn_implementation: the attention the actors' model runs (see `ProcessPool`).
    """

    def __init__(self, address: str, workers: int | None, model: str, *, num_gpus: float = 0,
                 attn_implementation: str = "eager"):
        ray = require_ray()
        self._started = connect(address, workers)
        if workers is None:
            workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.workers = workers
        from attnc.parallel.shard_worker import ShardWorker

        actor = ray.remote(num_cpus=1, num_gpus=num_gpus, max_restarts=MAX_RESTARTS,
                           max_task_retries=MAX_TASK_RETRIES)(ShardWorker)
        self.actors = [actor.remote(model, threads=1, attn_implementation=attn_implementation)
                       for _ in range(workers)]
        try:
            ray.get([a.ready.remote() for a in self.actors])
        except Exception as error:  # an actor's model load failed: say so before any work
            self.close()
            raise PoolError(f"a Ray worker could not load {model!r}: {error}") from None

    def map(self, tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        from ray.exceptions import RayActorError
        from ray.util import ActorPool

        pool = ActorPool(self.actors)
        try:
            yield from pool.map_unordered(lambda a, item: a.run.remote(*item), list(enumerate(tasks)))
        except RayActorError as error:
            raise PoolError(f"a Ray worker died more than {MAX_RESTARTS} times: {error}") from None

    def close(self) -> None:
        ray = require_ray()
        for a in getattr(self, "actors", []):
            ray.kill(a, no_restart=True)
        self.actors = []
        if self._started:
            ray.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
