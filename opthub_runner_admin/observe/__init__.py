"""Seeing what a running runner does: events, status line, JSON logs, metrics, status page.

The worker calls a ``JobEvents`` observer (``events.py``) at a few points and
knows nothing else of this package; each view (``board`` for the status
line, the page and ``/healthz``; ``metrics`` for Prometheus) is an observer.
"""
