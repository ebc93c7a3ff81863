"""``opthub-runner fleet``: the manifests of a fleet, made from the runners' own config.yml.

Every value an engine must agree on with the runners (the queue, the target
per runner, the grace period past the drain) is read from the config, so the
engine's files are printed from it rather than copied by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml

from ..config.schema import SECRET_KEYS, Config
from ..fleet.drain import Drain
from .common import EXIT_CONFIG, fail, read_config

_MODE = click.option(
    "--mode",
    type=click.Choice(["evaluator", "scorer"]),
    default="evaluator",
    show_default=True,
    help="Which runners the fleet is made of.",
)
_CONFIG = click.option(
    "--config",
    "config_path",
    default="config.yml",
    show_default=True,
    help="The runners' config.yml.",
)


@click.group()
def fleet() -> None:
    """Print what an engine needs to run a fleet of runners that follows its queue.

    \b
    Examples:
      opthub-runner fleet kubernetes --config config.yml --image REGISTRY/opthub-runner:0.1.0
      opthub-runner fleet autoscaling --config config.yml > scaling-policy.json
    """


def drain_of(config: Config) -> Drain:
    return Drain(
        timeout=config.timeout,
        visibility_timeout=config.visibility_timeout,
        grace_period=config.grace_period,
    )


def queue_url_of(config: Config, mode: str) -> str:
    url: str | None = getattr(config, f"{mode}_queue_url")
    if not url:
        fail(
            f"{mode}_queue_url is not set in the config: the fleet scales on that queue",
            EXIT_CONFIG,
        )
    return url


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the config files in a ConfigMap) as literal blocks."""


def _block_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _block_text)


def dump_manifests(documents: list[dict[str, Any]]) -> str:
    return yaml.dump_all(documents, Dumper=_BlockDumper, sort_keys=False)


def _raw(config_path: str) -> dict[str, Any]:
    loaded = yaml.safe_load(Path(config_path).read_text())
    return loaded if isinstance(loaded, dict) else {}


@fleet.command()
@_CONFIG
@_MODE
@click.option(
    "--image",
    default="opthub-runner:latest",
    show_default=True,
    help="The runner's image, built from the repository's Dockerfile.",
)
@click.option(
    "--role-arn",
    default="arn:aws:iam::123456789012:role/opthub-runner",
    show_default=True,
    help="The IAM role of the pods (IRSA) and of KEDA's scaler.",
)
@click.option("--namespace", default="opthub", show_default=True)
@click.option("--min-replicas", type=click.IntRange(0), default=0, show_default=True)
@click.option("--max-replicas", type=click.IntRange(1), default=10, show_default=True)
def kubernetes(  # noqa: PLR0917 -- click passes every option
    config_path: str,
    mode: str,
    image: str,
    role_arn: str,
    namespace: str,
    min_replicas: int,
    max_replicas: int,
) -> None:
    """Print a KEDA-scaled Deployment of runners and what it needs, as one YAML stream.

    \b
    Example:
      opthub-runner fleet kubernetes --config config.yml > fleet.yml
      kubectl apply -f fleet.yml
    """
    from ..fleet.kubernetes import METRICS_PORT, STATE_DIR, KubernetesFleet, manifests
    from ..fleet.pod_config import pod_config_files

    config = read_config(config_path)
    if min_replicas > max_replicas:
        fail(f"--min-replicas {min_replicas} is above --max-replicas {max_replicas}", 2)
    matches = config.matches_file.read_text() if config.matches_file else None
    files, dropped = pod_config_files(
        _raw(config_path),
        secret_keys=SECRET_KEYS,
        matches_text=matches,
        state_dir=STATE_DIR,
        metrics_port=METRICS_PORT,
    )
    spec = KubernetesFleet(
        mode=mode,
        queue_url=queue_url_of(config, mode),
        region=config.region_name,
        workers=config.workers,
        drain=drain_of(config),
        config_files=files,
        image=image,
        role_arn=role_arn,
        namespace=namespace,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
    )
    header = f"# opthub-runner fleet kubernetes --mode {mode}: generated from {config_path}\n"
    if dropped:
        header += f"# left out (the pods' IAM role gives AWS access): {', '.join(dropped)}\n"
    click.echo(header + dump_manifests(manifests(spec)), nl=False)


@fleet.command()
@_CONFIG
@_MODE
@click.option(
    "--runners-per-instance",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Runner processes of this mode on each instance (the target is workers times this).",
)
def autoscaling(config_path: str, mode: str, runners_per_instance: int) -> None:
    """Print a CloudFormation template: target tracking on the queue's backlog per instance.

    \b
    Example:
      opthub-runner fleet autoscaling --config config.yml > scaling-policy.json
      aws cloudformation deploy --template-file scaling-policy.json \\
        --stack-name opthub-evaluators-scaling \\
        --parameter-overrides AutoScalingGroupName=opthub-evaluators
    """
    import json

    from ..fleet.scaling_policy import BacklogTarget, cloudformation

    config = read_config(config_path)
    target = BacklogTarget(
        queue_url=queue_url_of(config, mode), target=config.workers * runners_per_instance
    )
    click.echo(json.dumps(cloudformation(target, mode=mode), indent=2))
