"""opthub-runner: evaluates and scores OptHub solutions in Docker containers."""

__version__ = "0.1.0"
