"""The study's executor: runs named stages through the stage cache, timing each.

A `Stage` is a name, the inputs its cache key is made of, and a function of
those inputs that writes its outputs into the stage's cache directory and
returns a record. The executor alone decides whether a stage runs (a finished
entry with the same key is reused), times it, tells the user what happens, and
lends the stage its shard pool: the window-parallel stages (extract, score)
hand their shards to it. The same stages run on one process, on local worker
processes or on Ray actors; only the pool differs (`attnc.parallel`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from attnc.study.stage_cache import StageCache, StageEntry

if TYPE_CHECKING:
    from attnc.parallel.pools import ShardPool


@dataclass(frozen=True)
class Stage:
    """One named step of the study.

    Attributes:
        name: the cache name ("compile", "extract", "sweep", ...).
        inputs: everything the output depends on (hashed into the cache key).
        compute: ``compute(directory, pool) -> record``: writes the outputs into
            `directory` and returns a JSON-able summary; `pool` is the executor's
            shard pool (None: work in this process).
        label: what the user sees ("order programs", "sweep content_free", ...);
            timings add up per label. Defaults to `name`.
    """

    name: str
    inputs: dict
    compute: Callable[[Path, "ShardPool | None"], dict]
    label: str | None = None


class StageExecutor:
    """Runs stages through a `StageCache`, with a shard pool for the parallel ones.

    Attributes:
        seconds: label -> wall seconds spent on it in this run (cached stages: the lookup).
        computed: label -> seconds its outputs cost when they were computed.
    """

    def __init__(self, cache: StageCache, say: Callable[[str], None], pool: "ShardPool | None" = None):
        self.cache = cache
        self.say = say
        self.pool = pool
        self.seconds: dict[str, float] = {}
        self.computed: dict[str, float] = {}

    def run(self, stage: Stage) -> StageEntry:
        """The stage's finished cache entry: reused when its key is there, computed otherwise."""
        label = stage.label or stage.name
        entry = self.cache.entry(stage.name, stage.inputs)
        started = time.perf_counter()
        if entry.done:
            self.say(f"[{label}] cached ({entry.directory.name}, computed in {entry.record.get('seconds', 0):.1f} s)")
        else:
            self.say(f"[{label}] running ...")
            record = stage.compute(entry.directory, self.pool)
            record["seconds"] = round(time.perf_counter() - started, 3)
            entry = self.cache.finish(entry, record)
            self.say(f"[{label}] done in {record['seconds']:.1f} s")
        self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - started
        self.computed[label] = self.computed.get(label, 0.0) + float(entry.record.get("seconds", 0.0))
        return entry
