"""Where solutions are read and results written: the table, behind a narrow interface."""

from .base import Store, TrialState

__all__ = ["Store", "TrialState"]
