"""The library artifact's layout and manifest records (written by library_build, read by runtime.library).

    LIB/manifest.json        format_version, attnc_version, backend requested,
                             per program: name, source_file, sha256, form,
                             backend, status, messages, compile_s,
                             duplicate_of, kernel, sparse_k;
                             kernels: file name -> sha256
    LIB/sources/<name>.py    the validated source, byte for byte
    LIB/kernels/k_<hash>.py  generated kernel code (regenerable from sources)

No pickles: nothing in a library is loaded except text that is re-validated
(sources) or regenerated and compared (kernels). numba's on-disk cache (which
is pickled) lives in a per-user directory outside the library
(kernel_store.numba_cache_dir), and a library holding anything else in
kernels/ is refused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
SOURCES_DIR = "sources"
KERNELS_DIR = "kernels"


class LibraryError(RuntimeError):
    """A library cannot be trusted or read (tampered, unknown version, missing files)."""


@dataclass
class ProgramRecord:
    """One program's entry in the manifest."""

    name: str
    source_file: str
    sha256: str
    form: str | None
    backend: str | None
    status: str  # "ok" or "error"
    messages: list[str] = field(default_factory=list)
    compile_s: float = 0.0
    duplicate_of: str | None = None
    kernel: str | None = None
    sparse_k: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ProgramRecord":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise LibraryError(f"manifest program entry has unknown fields {sorted(unknown)}")
        return cls(**data)
