"""The fleet's commands: what every runner of a competition shares, seen from any host.

``status`` reads the counts of the evaluator's and the scorer's queues and of
their dead-letter queues; ``dlq`` lists, shows and brings back dead-lettered
messages. All of it goes through the queue seam (``queue.base.FleetQueue``),
so that it is tested on the in-memory queue and on SQS alike.
"""

#: The runner's two kinds of queue, in the order they are shown.
MODES = ("evaluator", "scorer")
