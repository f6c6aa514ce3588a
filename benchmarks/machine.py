"""The machine a benchmark ran on, recorded in every benchmark's JSON."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

#: Packages whose versions change benchmark numbers.
_PACKAGES = ("torch", "numpy", "numba", "transformers")


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what `platform` says."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def describe_machine() -> dict:
    """JSON-ready description: CPU model, cores, threads, library versions, GPU if any."""
    import numba
    import torch

    gpu = None
    if torch.cuda.is_available():
        gpu = {"name": torch.cuda.get_device_name(0), "count": torch.cuda.device_count(),
               "cuda": torch.version.cuda}
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "numba_threads": numba.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {name: _version(name) for name in _PACKAGES},
        "gpu": gpu,
    }


def machine_line(machine: dict) -> str:
    """One line for the top of a benchmark's table."""
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
    gpu = machine["gpu"]["name"] if machine.get("gpu") else "no GPU"
    return (f"machine: {machine['cpu']}, {machine['cores']} cores (torch threads {machine['torch_threads']}), "
            f"{gpu}; python {machine['python']}, {versions}")
