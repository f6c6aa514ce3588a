"""Where generated kernel code lives and how it is turned into callables.

Array kernels (numpy/torch) are plain Python executed from their generated
text with no builtins. Loop kernels (numba) are written to a real file,
`<dir>/k_<sha256[:16]>.py`, and imported from it, because numba's on-disk
cache (`cache=True`) is keyed by the source file: a second process that
imports the same unchanged file reuses the compiled machine code instead of
JIT-compiling again. A library keeps its kernels in `LIB/kernels/`; a program
compiled outside a library uses `$ATTNC_KERNEL_DIR` (default
`~/.cache/attnc/kernels`).

numba's cache files are pickles, so they never live inside a library (which
may come from someone else): unless the user set `NUMBA_CACHE_DIR`, numba is
pointed at `$ATTNC_NUMBA_CACHE_DIR` (default `~/.cache/attnc/numba`), a
per-user directory keyed by each kernel file's path and modification time.

`load_loop_kernel_python` runs the same loop-kernel text as plain Python (its
`@njit` decorators and runtime helpers bound to plain functions,
loop_runtime.python_namespace): no JIT, for the compiler's probe windows, so
that `attnc compile` JIT-compiles nothing and a kernel is compiled by numba
only when a program is first evaluated.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import threading
from pathlib import Path

_ARRAY_CACHE: dict[str, object] = {}
_LOOP_CACHE: dict[tuple[str, str], object] = {}
_PYTHON_CACHE: dict[str, object] = {}
_LOCK = threading.Lock()


def kernel_key(source: str) -> str:
    """The file stem a kernel's source is stored under."""
    return "k_" + hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


def default_kernel_dir() -> Path:
    return Path(os.environ.get("ATTNC_KERNEL_DIR") or Path.home() / ".cache" / "attnc" / "kernels")


def load_array_kernel(source: str):
    """The `kernel` function of generated array-form source (cached by text)."""
    key = kernel_key(source)
    with _LOCK:
        fn = _ARRAY_CACHE.get(key)
        if fn is None:
            namespace: dict = {"__builtins__": {}}
            exec(compile(source, f"<attnc kernel {key}>", "exec"), namespace)
            fn = _ARRAY_CACHE[key] = namespace["kernel"]
        return fn


def write_kernel_file(source: str, directory: Path) -> Path:
    """Write `source` to `directory/<key>.py` unless an identical file is there.

    An unchanged file keeps its modification time, which numba's cache index checks.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{kernel_key(source)}.py"
    if not path.exists() or path.read_text(encoding="utf-8") != source:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(source, encoding="utf-8")
        os.replace(tmp, path)
    return path


def numba_cache_dir() -> Path:
    """Where numba caches compiled kernels (never inside a library directory)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    return Path(os.environ.get("ATTNC_NUMBA_CACHE_DIR") or Path.home() / ".cache" / "attnc" / "numba")


def _use_user_numba_cache() -> None:
    from numba.core import config

    if not config.CACHE_DIR:
        config.CACHE_DIR = str(numba_cache_dir())


def load_loop_kernel(source: str, directory: Path | None = None):
    """Import the `kernel` of generated loop-form (numba) source from its file.

    The file is (re)written only if missing or different; the text imported is
    always exactly `source`.
    """
    directory = Path(directory) if directory is not None else default_kernel_dir()
    key = kernel_key(source)
    with _LOCK:
        cache_key = (str(directory.resolve()), key)
        fn = _LOOP_CACHE.get(cache_key)
        if fn is not None:
            return fn
        path = write_kernel_file(source, directory)
        _use_user_numba_cache()
        module_name = f"attnc_kernel_{key}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        fn = _LOOP_CACHE[cache_key] = module.kernel
        return fn


def load_loop_kernel_python(source: str):
    """The `kernel` of generated loop-form source as plain Python (no numba; cached by text).

    Raises:
        ValueError: `source` is not a loop kernel (no runtime import line).
    """
    from attnc.compiler.loop_runtime import RUNTIME_IMPORT, python_namespace

    key = kernel_key(source)
    with _LOCK:
        fn = _PYTHON_CACHE.get(key)
        if fn is None:
            if source.count(RUNTIME_IMPORT + "\n") != 1:
                raise ValueError("not a generated loop kernel: no runtime import line")
            namespace = dict(python_namespace())
            exec(compile(source.replace(RUNTIME_IMPORT + "\n", "\n"), f"<attnc python kernel {key}>", "exec"),
                 namespace)
            fn = _PYTHON_CACHE[key] = namespace["kernel"]
        return fn
