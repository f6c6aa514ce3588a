"""Content-addressed cache of study stages, so a re-run redoes only what changed.

Every stage of `attnc study` names its output by a key: the sha256 of a
canonical JSON of everything the output depends on (input hashes, settings,
the attnc version, and the keys of the stages it reads). A stage whose key
has a finished entry is skipped; a crash mid-stage leaves no finished entry
(the record is written last, atomically), so the next run redoes only it.
Resumable stages (extraction) may keep partial work in their entry directory.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attnc import __version__
from attnc.runtime.store import write_json_atomic

#: Written last in a stage's directory; its presence means the stage finished.
RECORD_NAME = "stage.json"


def content_key(stage: str, inputs: dict[str, Any]) -> str:
    """A 16-hex key of a stage's inputs (canonical JSON; the attnc version included)."""
    canonical = json.dumps({"stage": stage, "attnc": __version__, "inputs": inputs}, sort_keys=True,
                           separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class StageEntry:
    """One stage's cache entry: its directory and, once finished, its record.

    Attributes:
        stage: the stage name ("compile", "extract", ...).
        key: the content key of its inputs.
        directory: where the stage writes its outputs.
        record: the finished stage's record (outputs' summary, seconds), or None.
    """

    stage: str
    key: str
    directory: Path
    record: dict | None

    @property
    def done(self) -> bool:
        return self.record is not None


class StageCache:
    """Stage directories `ROOT/<stage>-<key>/`, each finished by a `stage.json` record."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def entry(self, stage: str, inputs: dict[str, Any]) -> StageEntry:
        """The entry of `stage` for these inputs (created empty when new)."""
        key = content_key(stage, inputs)
        directory = self.root / f"{stage}-{key}"
        directory.mkdir(parents=True, exist_ok=True)
        record = None
        path = directory / RECORD_NAME
        if path.is_file():
            try:
                record = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                record = None  # a torn record: the stage is redone
        return StageEntry(stage, key, directory, record)

    def finish(self, entry: StageEntry, record: dict) -> StageEntry:
        """Write the stage's record atomically (last), marking it finished."""
        write_json_atomic(entry.directory / RECORD_NAME, record)
        return StageEntry(entry.stage, entry.key, entry.directory, record)
