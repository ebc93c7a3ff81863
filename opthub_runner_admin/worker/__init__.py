"""The loop that runs jobs: slots, admission, backoff per cause, settling."""

from .loop import Worker
from .stats import WorkerSettings, WorkerStats

__all__ = ["Worker", "WorkerSettings", "WorkerStats"]
