"""Kubernetes manifests for a fleet of one mode's runners, scaled by KEDA on its SQS queue.

A Deployment scaled by a KEDA ScaledObject (not a ScaledJob): the runner is a
long-lived poller that already drains on SIGTERM and keeps its login, its
scorer history and its pulled images across jobs, where a Job per message
would pay for each again. KEDA's scale-down only sends SIGTERM, so the pod's
terminationGracePeriodSeconds is set past the runner's drain (``Drain``) and
the runner's ``--grace-period`` to the drain itself: a pod scaled away
finishes its jobs, or hands them back, before the kubelet kills it.

The trigger counts in-flight messages too (``scaleOnInFlight``): a runner busy
with a long job is not scaled away while the queue looks empty. Its target,
``queueLength``, is the messages one pod takes at once (``workers``). AWS
access comes from the pod's identity (IRSA: the ServiceAccount's role), for
KEDA's scaler (``identityOwner: workload``) and for the runner alike.

Kubernetes nodes run containerd, not Docker, so each pod runs its own Docker
daemon as a native sidecar (an init container with ``restartPolicy:
Always``, Kubernetes 1.29 and later), which is stopped only after the
runner has drained; the two share a socket in an emptyDir.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .drain import Drain

#: The image's unprivileged user (Dockerfile), also given the sidecar daemon's socket.
RUNNER_UID = 10001
DOCKER_SOCKET_DIR = "/var/run/dind"
CONFIG_DIR = "/etc/opthub-runner"
STATE_DIR = "/var/lib/opthub-runner"
#: Where the runner serves /metrics and /healthz in the pod.
METRICS_PORT = 9100
#: The Secret the runner reads OPTHUB_USERNAME and OPTHUB_PASSWORD from.
LOGIN_SECRET = "opthub-runner-login"


@dataclass(frozen=True)
class KubernetesFleet:
    """What the manifests are made of; the CLI fills it from config.yml."""

    mode: str
    queue_url: str
    region: str
    workers: int
    drain: Drain
    #: config.yml and the files it names, as they go into the ConfigMap.
    config_files: dict[str, str]
    image: str = "opthub-runner:latest"
    dind_image: str = "docker:27-dind"
    role_arn: str = "arn:aws:iam::123456789012:role/opthub-runner"
    namespace: str = "opthub"
    min_replicas: int = 0
    max_replicas: int = 10
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"opthub-runner-{self.mode}"


def manifests(fleet: KubernetesFleet) -> list[dict[str, Any]]:
    """ServiceAccount, ConfigMap, Deployment, TriggerAuthentication and ScaledObject."""
    return [
        _service_account(fleet),
        _config_map(fleet),
        _deployment(fleet),
        _trigger_authentication(fleet),
        _scaled_object(fleet),
    ]


def _metadata(fleet: KubernetesFleet, **extra: Any) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": "opthub-runner", "opthub-runner/mode": fleet.mode}
    return {"name": fleet.name, "namespace": fleet.namespace, "labels": labels, **extra}


def _service_account(fleet: KubernetesFleet) -> dict[str, Any]:
    annotations = {"eks.amazonaws.com/role-arn": fleet.role_arn}
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(fleet, annotations=annotations),
    }


def _config_map(fleet: KubernetesFleet) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(fleet),
        "data": dict(fleet.config_files),
    }


def _runner_container(fleet: KubernetesFleet) -> dict[str, Any]:
    return {
        "name": "runner",
        "image": fleet.image,
        "args": [
            fleet.mode,
            "--config",
            f"{CONFIG_DIR}/config.yml",
            "--grace-period",
            str(fleet.drain.seconds),
        ],
        "env": [
            {"name": "DOCKER_HOST", "value": f"unix://{DOCKER_SOCKET_DIR}/docker.sock"},
            {"name": "AWS_REGION", "value": fleet.region},
        ],
        "envFrom": [{"secretRef": {"name": LOGIN_SECRET, "optional": True}}],
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "metrics"},
            "initialDelaySeconds": 60,
            "periodSeconds": 30,
            "failureThreshold": 4,
        },
        "securityContext": {
            "runAsUser": RUNNER_UID,
            "runAsGroup": RUNNER_UID,
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "state", "mountPath": STATE_DIR},
            {"name": "docker-socket", "mountPath": DOCKER_SOCKET_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }


def _docker_sidecar(fleet: KubernetesFleet) -> dict[str, Any]:
    return {
        "name": "docker",
        "image": fleet.dind_image,
        "restartPolicy": "Always",  # a native sidecar: stopped after the runner
        "args": [f"--host=unix://{DOCKER_SOCKET_DIR}/docker.sock", f"--group={RUNNER_UID}"],
        "env": [{"name": "DOCKER_TLS_CERTDIR", "value": ""}],
        "securityContext": {"privileged": True},
        "startupProbe": {
            "exec": {
                "command": ["docker", "-H", f"unix://{DOCKER_SOCKET_DIR}/docker.sock", "info"]
            },
            "periodSeconds": 2,
            "failureThreshold": 30,
        },
        "volumeMounts": [
            {"name": "docker-socket", "mountPath": DOCKER_SOCKET_DIR},
            {"name": "docker-data", "mountPath": "/var/lib/docker"},
        ],
    }


def _deployment(fleet: KubernetesFleet) -> dict[str, Any]:
    selector = {"app.kubernetes.io/name": "opthub-runner", "opthub-runner/mode": fleet.mode}
    annotations = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(METRICS_PORT),
        "prometheus.io/path": "/metrics",
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(fleet),
        "spec": {
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {**selector, **fleet.labels}, "annotations": annotations},
                "spec": {
                    "serviceAccountName": fleet.name,
                    "terminationGracePeriodSeconds": fleet.drain.kill_after,
                    "securityContext": {"fsGroup": RUNNER_UID},
                    "initContainers": [_docker_sidecar(fleet)],
                    "containers": [_runner_container(fleet)],
                    "volumes": [
                        {"name": "config", "configMap": {"name": fleet.name}},
                        {"name": "state", "emptyDir": {}},
                        {"name": "docker-socket", "emptyDir": {}},
                        {"name": "docker-data", "emptyDir": {}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def _trigger_authentication(fleet: KubernetesFleet) -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": _metadata(fleet),
        # The scaler reads the queue's counts as the Deployment's ServiceAccount (IRSA).
        "spec": {"podIdentity": {"provider": "aws", "identityOwner": "workload"}},
    }


def _scaled_object(fleet: KubernetesFleet) -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": _metadata(fleet),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": fleet.name},
            "minReplicaCount": fleet.min_replicas,
            "maxReplicaCount": fleet.max_replicas,
            "pollingInterval": 30,
            # Scale-down waits this long after the queue looks idle, then drains pods one by one.
            "cooldownPeriod": 300,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {
                        "scaleDown": {
                            "stabilizationWindowSeconds": 300,
                            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
                        }
                    }
                }
            },
            "triggers": [
                {
                    "type": "aws-sqs-queue",
                    "authenticationRef": {"name": fleet.name},
                    # KEDA takes trigger metadata as strings only.
                    "metadata": {
                        "queueURL": fleet.queue_url,
                        "queueLength": str(fleet.workers),
                        "awsRegion": fleet.region,
                        "scaleOnInFlight": "true",
                        "scaleOnDelayed": "false",
                    },
                }
            ],
        },
    }
