"""Where jobs come from: a message queue with visibility, behind a narrow interface."""

from .base import Message, Queue

__all__ = ["Message", "Queue"]
