"""The opt-in EC2 features of one runner process, built from its config (fleet keys).

``instance_events`` adds the scale-in guard to the runner's job events;
``watch_spot`` starts the Spot watch once the worker exists. Both register
their stop on ``resources``, so that the protection is lifted when the
runner leaves.
"""

from __future__ import annotations

import contextlib

from ..aws.autoscaling import InstanceProtection, autoscaling_client
from ..aws.clients import config_clients
from ..config.schema import Config
from ..host.instance_metadata import InstanceMetadata
from ..observe.events import Fanout, JobEvents
from .scale_in import ScaleInGuard
from .spot_watch import SpotWatch, Stoppable


def instance_events(
    config: Config, events: JobEvents, resources: contextlib.ExitStack
) -> JobEvents:
    """``events``, with the scale-in guard beside it when ``scale_in_protection`` is on."""
    if not config.scale_in_protection:
        return events
    metadata = InstanceMetadata(base_url=config.instance_metadata_url)
    protection = InstanceProtection(
        client=autoscaling_client(config_clients(config)), instance_id=metadata.instance_id()
    )
    protection.group()  # a host outside any group is told at start, in one line
    guard = ScaleInGuard(protection=protection)
    guard.start()
    resources.callback(guard.close)
    return Fanout(observers=[events, guard])


def watch_spot(config: Config, worker: Stoppable, resources: contextlib.ExitStack) -> None:
    if not config.spot_interruption_watch:
        return
    watch = SpotWatch(source=InstanceMetadata(base_url=config.instance_metadata_url), worker=worker)
    watch.start()
    resources.callback(watch.close)
