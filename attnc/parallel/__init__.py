"""Window-parallel work on several processes: local worker processes or Ray actors.

Extraction, scoring and evaluation are pure functions of (window shard, model
or library) -> a partial result (a store shard file; per-batch IoU or NLL sums;
QA log-probabilities) that the caller merges in shard order, and offline
synthesis fits chunks of heads that merge in head order, so every pool gives
exactly the single-process result.
`shard_worker` holds those functions' state (the model and libraries, loaded
once per worker); `pools` runs shards on local processes; `ray_pool` on Ray
actors (`pip install 'attnc[ray]'`); `workers` turns ``--workers`` / ``--ray``
into a pool.
"""
