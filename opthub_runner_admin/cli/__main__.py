"""``python -m opthub_runner_admin.cli``: the ``opthub-runner`` command."""

from .main import main

main()
