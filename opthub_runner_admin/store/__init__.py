"""Where solutions are read and results written: the table, behind a narrow interface."""

from .base import JobInput, Store, TrialState

__all__ = ["JobInput", "Store", "TrialState"]
