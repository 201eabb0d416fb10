"""The Celery baseline the engine benchmark compares against: a no-op task chained on the same Redis."""

from __future__ import annotations

import os

from celery import Celery

app = Celery("aob_bench", broker=os.environ["BENCH_CELERY_BROKER"], backend=os.environ["BENCH_CELERY_BROKER"])


@app.task
def noop(_: object = None) -> None:
    """Does nothing; a chain of these measures the queue's per-task overhead."""
