"""--workers and --ray, for the commands whose work splits into shards (extract, score, study, eval, synth)."""

from __future__ import annotations

import argparse
import sys


def add_parallel_arguments(parser: argparse.ArgumentParser, *, what: str = "the windows",
                           default: str = "all cores") -> None:
    """Add --workers and --ray; `what` is split over the workers, `default` says what no --workers means."""
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help=f"processes {what} are split over (default: {default}; with --ray: the "
                             "cluster's CPUs); results equal one process's")
    parser.add_argument("--ray", nargs="?", const="auto", default=None, metavar="auto|local|ADDRESS",
                        help="run the shards as Ray tasks: on the cluster `ray start` runs here (auto, the "
                             "default), on a Ray started for this command (local) or at HOST:PORT; needs "
                             "pip install 'attnc[ray]'")


def pool_from_args(args: argparse.Namespace, model: str, loaded=None, *, default_workers: int | None = None,
                   attn_implementation: str = "eager"):
    """The shard pool for `args` (None: this process); see `attnc.parallel.workers.make_pool`.

    Args:
        default_workers: local workers without --workers (None: all cores; 1: this process).
        attn_implementation: the attention the workers' model runs.

    Raises:
        PoolError: --workers < 1, Ray not installed, or an unreachable --ray address.
    """
    from attnc.parallel.workers import make_pool

    workers = args.workers if args.workers is not None or args.ray is not None else default_workers
    return make_pool(model, workers=workers, ray=args.ray, loaded=loaded, attn_implementation=attn_implementation,
                     say=lambda text: print(f"attnc {args.command}: {text}", file=sys.stderr))
