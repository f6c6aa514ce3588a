"""Suite-wide guards shared by every test module."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _restore_thread_counts():
    """Put torch's and numba's thread counts back after each test.

    Benchmarks and shard workers set them for the process (`benchmarks/records.py`,
    `ShardWorker(threads=...)`); a test that runs one in-process must not change the
    float reductions, and so the fits, of every test after it.
    """
    import numba
    import torch

    torch_threads, numba_threads = torch.get_num_threads(), numba.get_num_threads()
    yield
    if torch.get_num_threads() != torch_threads:
        torch.set_num_threads(torch_threads)
    if numba.get_num_threads() != numba_threads:
        numba.set_num_threads(numba_threads)
