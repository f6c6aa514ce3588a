"""Programs this process has already validated and compiled, by source hash.

Loading a library re-validates each program from its stored source (a library
directory is never trusted as it stands), which used to mean compiling every
program twice in one study: once when `build_library` wrote the library and
again when the study read it back. `build_library` records what it compiled
here; `attnc.runtime.library.Library` reuses an entry when the stored source
has the same sha256 (checked against the manifest first) and the same backend
and device, and still checks the kernel against the manifest and the disk.
Only this process's own compiler fills it: nothing read from disk lands here.
"""

from __future__ import annotations

import dataclasses
import threading

from attnc.compiler.compiled import CompiledProgram

_VALIDATED: dict[tuple[str, str, str], CompiledProgram] = {}
_LOCK = threading.Lock()


def remember(compiled: CompiledProgram) -> None:
    """Record a program this process validated and compiled (its source hash, backend, device)."""
    snapshot = dataclasses.replace(compiled)  # a copy: later changes to `compiled` (a JIT fallback) stay out
    with _LOCK:
        _VALIDATED[(snapshot.program.sha256, snapshot.backend, snapshot.device)] = snapshot


def recall(sha256: str, backend: str, device: str) -> CompiledProgram | None:
    """A copy of the program compiled here from a source with this sha256, for this backend and device."""
    with _LOCK:
        found = _VALIDATED.get((sha256, backend, device))
    return None if found is None else dataclasses.replace(found)
