"""``opthub-runner demo``: both modes on an embedded local stack, once or served."""

from __future__ import annotations

import click

from ..errors import FatalError
from .common import EXIT_FATAL, fail, setup_logging


@click.command()
@click.option("--solutions", default=5, show_default=True, help="Solutions to enqueue.")
@click.option("--keep", is_flag=True, help="Keep the work directory (.demo/) afterwards.")
@click.option(
    "--serve",
    is_flag=True,
    help="Keep the stack, the runners and the status page up until Ctrl-C; print a config.yml.",
)
@click.option(
    "--port", default=8080, show_default=True, help="With --serve: the status page's port."
)
@click.option(
    "--every", default=5.0, show_default=True, help="With --serve: seconds between solutions."
)
def demo(solutions: int, keep: bool, serve: bool, port: int, every: float) -> None:
    """Run the evaluator and the scorer on an embedded local stack (moto + local images).

    \b
    Example:
      opthub-runner demo --solutions 8
      opthub-runner demo --serve --port 8080
    """
    setup_logging("INFO")
    try:
        if serve:
            from ..demo.serve import serve_demo

            serve_demo(every=every, port=port)
            return
        from ..demo.run import run_demo

        run_demo(solutions=solutions, keep=keep)
    except FatalError as exc:
        fail(str(exc), EXIT_FATAL)
    except OSError as exc:
        fail(f"cannot serve the demo's status page: {exc} (choose another --port)", EXIT_FATAL)
