"""What every runner of a competition shares, seen from any host: its queues.

The counts of the evaluator's and the scorer's queues and of their dead-letter
queues (``queue_counts``, for ``opthub-runner status``), and dead-lettered
messages listed, shown and brought back (``dead_letters``, for ``dlq``); the
commands themselves are ``cli/fleet_commands.py``. All of it goes through the
queue seam (``queue.base.FleetQueue``), so that it is tested on the in-memory
queue and on SQS alike.
"""

#: The runner's two kinds of queue, in the order they are shown.
MODES = ("evaluator", "scorer")
