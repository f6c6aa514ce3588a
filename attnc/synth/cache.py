"""On-disk cache of LLM replies, keyed by the hash of the full request.

The key covers everything that shapes a reply (endpoint, model, messages,
sampling parameters, and which sample slot of a head's request it is), so a
re-run with the same settings makes no HTTP request, and changing any setting
asks again. Entries are JSON, written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


def request_key(params: dict) -> str:
    """sha256 of the request parameters as canonical JSON."""
    return hashlib.sha256(json.dumps(params, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename (no partial files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


@dataclass(frozen=True)
class ReplyCache:
    """Replies stored as `<dir>/<key[:2]>/<key>.json`."""

    directory: Path

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        """The stored entry, or None when absent or unreadable (then it is asked again)."""
        path = self._path(key)
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None

    def put(self, key: str, entry: dict) -> None:
        write_atomically(self._path(key), json.dumps(entry, ensure_ascii=False))
