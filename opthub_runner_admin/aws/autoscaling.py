"""EC2 Auto Scaling's scale-in protection of this instance (SetInstanceProtection)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..errors import SetupError, TransientError
from .clients import AwsClients


def autoscaling_client(clients: AwsClients) -> Any:
    """An Auto Scaling client of the clients' session (and endpoint)."""
    return clients.session.client("autoscaling", endpoint_url=clients.endpoint_url)


class InstanceProtection:
    """Turns the scale-in protection of one instance of its Auto Scaling group on and off."""

    def __init__(self, *, client: Any, instance_id: str) -> None:
        self._client = client
        self._instance_id = instance_id
        self._group: str | None = None

    def group(self) -> str:
        """The instance's Auto Scaling group, asked once."""
        if self._group is None:
            try:
                found = self._client.describe_auto_scaling_instances(
                    InstanceIds=[self._instance_id]
                )["AutoScalingInstances"]
            except (ClientError, BotoCoreError) as exc:
                raise TransientError(f"DescribeAutoScalingInstances failed: {exc}") from exc
            if not found:
                raise SetupError(
                    f"instance {self._instance_id} is in no Auto Scaling group:"
                    " set scale_in_protection to false on this host"
                )
            self._group = str(found[0]["AutoScalingGroupName"])
        return self._group

    def set(self, protected: bool) -> None:
        try:
            self._client.set_instance_protection(
                InstanceIds=[self._instance_id],
                AutoScalingGroupName=self.group(),
                ProtectedFromScaleIn=protected,
            )
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"SetInstanceProtection failed: {exc}") from exc
