"""A participant's scoring history: complete, in trial order, and read incrementally."""

from .builder import History, HistoryBuilder
from .cache import HistoryCache, MemoryHistoryCache, SqliteHistoryCache

__all__ = ["History", "HistoryBuilder", "HistoryCache", "MemoryHistoryCache", "SqliteHistoryCache"]
