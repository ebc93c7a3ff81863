"""The config keys of a runner on an EC2 Auto Scaling group or a Spot instance."""

from __future__ import annotations

from pydantic import Field
from pydantic.dataclasses import dataclass

from ..host.instance_metadata import DEFAULT_URL
from ..settings.kinds import KEYS


@dataclass(config=KEYS, kw_only=True, frozen=True)
class FleetKeys:
    """Fleet: scale-in protection and Spot interruptions on EC2"""

    scale_in_protection: bool = Field(
        default=False,
        description="protect this EC2 instance from its Auto Scaling group's scale-in while a"
        " job runs, and lift the protection when idle (needs autoscaling:SetInstanceProtection"
        " and autoscaling:DescribeAutoScalingInstances)",
    )
    spot_interruption_watch: bool = Field(
        default=False,
        description="watch EC2's Spot interruption notice and drain at once when it comes,"
        " handing back what cannot finish before the instance goes",
    )
    instance_metadata_url: str = Field(
        default=DEFAULT_URL,
        description="the EC2 instance metadata service (IMDSv2) the two keys above read",
    )
