"""The garbage collector's settings for Tandem's long-running processes: the worker
(`tandem worker`, `tandem run`) and the API (its lifespan)."""

from __future__ import annotations

import gc

# Both allocate many short-lived objects per unit of work: a worker's payloads, ORM rows
# and MIME parts for a sign-up, the API's dicts and models for a Segment batch. At
# Python's default of 700, the collector's young passes, and the full ones they set off,
# took about 1.7 ms of CPU per sign-up in a worker (0.5 ms at 10,000) and about 4 us per
# ingested event in the API, a tenth of its CPU for ingestion (0.4 us at 10,000):
# docs/benchmarks.md, "Code kept for speed".
GC_YOUNG_THRESHOLD = 10_000


def tune_collector() -> None:
    """For a process once it has loaded its code: that code is frozen out of every
    collection, and young objects are collected less often."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
