"""What every benchmark shares: its common options, medians, and where its JSON goes."""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Sequence

from benchmarks.machine import cuda_available

#: Printed (and recorded) instead of GPU rows on a machine without CUDA.
NO_CUDA = "skipped: no CUDA device"


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """--json, --out, --device, --quick: the options every benchmark takes."""
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout (tables go to stderr)")
    parser.add_argument("--out", help="also write the JSON record to this file")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where the model and attention run (cuda only when a GPU is present)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repetitions (for tests and smoke runs)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch and numba threads (default: their defaults); on a shared, busy machine "
                             "--threads 1 avoids OpenMP threads stalling each other")


def apply_threads(threads: int | None) -> None:
    """Set torch's and numba's thread counts (None: leave the defaults)."""
    if threads is None:
        return
    import numba
    import torch

    if threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def cuda_skip(device: str) -> str | None:
    """NO_CUDA when `device` is cuda and none is present, else None."""
    return NO_CUDA if device == "cuda" and not cuda_available() else None


def median(values: Sequence[float]) -> float:
    """Median of measured repetitions (benchmarks report medians, never best-of)."""
    return float(statistics.median(values))


def table_stream(as_json: bool):
    """Tables go to stdout, or to stderr when stdout carries the JSON object."""
    return sys.stderr if as_json else sys.stdout


def emit(record: dict, args: argparse.Namespace) -> None:
    """Print the record as one JSON object (--json) and/or write it to --out."""
    text = json.dumps(_finite(record), indent=2)
    if getattr(args, "out", None):
        path = Path(args.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    if getattr(args, "json", False):
        print(text)


def _finite(value):
    """JSON has no inf/NaN: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


#: Model names the benches accept besides real ones: tiny random models, for tests.
TINY_MODELS = ("tiny-llama", "tiny-gpt2")


def start(args: argparse.Namespace, bench: str):
    """Apply --threads and pick the table stream; on --device cuda without CUDA, record the skip.

    Returns:
        (stream for tables, True when the bench was skipped and has already emitted its record).
    """
    apply_threads(args.threads)
    stream = table_stream(args.json)
    skipped = cuda_skip(args.device)
    if skipped:
        from benchmarks.machine import describe_machine

        print(skipped, file=stream)
        emit({"bench": bench, "device": args.device, "skipped": skipped, "machine": describe_machine()}, args)
    return stream, bool(skipped)


def bench_model(name: str, attn_implementation: str):
    """The model a bench measures: a tiny random one (TINY_MODELS) or `load_model(name)`."""
    from attnc.runtime.models import load_model, tiny_model

    if name in TINY_MODELS:
        return tiny_model(name.removeprefix("tiny-"), attn_implementation=attn_implementation)
    return load_model(name, attn_implementation=attn_implementation)
