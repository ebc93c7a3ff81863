"""The ``opthub-runner`` command: the click face, one module per command, and process control.

Nothing below this package imports it: the runner's parts know nothing of click.
"""
