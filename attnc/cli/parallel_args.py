"""--workers and --ray, for the commands whose work splits by window (extract, score, study)."""

from __future__ import annotations

import argparse
import sys


def add_parallel_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="processes the windows are split over (default: all cores; with --ray: the "
                             "cluster's CPUs); results equal one process's")
    parser.add_argument("--ray", nargs="?", const="auto", default=None, metavar="auto|local|ADDRESS",
                        help="run window shards as Ray tasks: on the cluster `ray start` runs here (auto, the "
                             "default), on a Ray started for this command (local) or at HOST:PORT; needs "
                             "pip install 'attnc[ray]'")


def pool_from_args(args: argparse.Namespace, model: str, loaded=None):
    """The shard pool for `args` (None: this process); see `attnc.parallel.workers.make_pool`.

    Raises:
        PoolError: --workers < 1, Ray not installed, or an unreachable --ray address.
    """
    from attnc.parallel.workers import make_pool

    return make_pool(model, workers=args.workers, ray=args.ray, loaded=loaded,
                     say=lambda text: print(f"attnc {args.command}: {text}", file=sys.stderr))
