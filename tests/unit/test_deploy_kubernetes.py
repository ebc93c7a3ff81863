"""deploy/kubernetes: the manifests `opthub-runner fleet kubernetes` prints from a config.yml.

The published JSON schemas of Kubernetes and KEDA are not reachable from the
suite (no network), so each manifest goes through a structural check of its
kind written here: the fields the API server and KEDA require, their types,
and the references between the objects (selector and labels, ServiceAccount,
ConfigMap, TriggerAuthentication, scale target). The fields that must agree
with the runners' config are checked against it, not against copied values.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from opthub_runner_admin.cli.main import main
from opthub_runner_admin.config.loading import load_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
EXAMPLE = DEPLOY / "config.example.yml"
SHIPPED = DEPLOY / "evaluator.yml"
EXAMPLE_IMAGE = "registry.example.com/opthub-runner:0.1.0"
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/"
SECRET = "wJalrXUtnFEMI-secret-value"


def _print(*args: str) -> str:
    result = CliRunner().invoke(main, ["fleet", "kubernetes", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def _documents(text: str) -> dict[str, dict[str, Any]]:
    documents = [doc for doc in yaml.safe_load_all(text) if doc]
    by_kind = {doc["kind"]: doc for doc in documents}
    assert len(by_kind) == len(documents)
    return by_kind


def _config(tmp_path: Path, **extra: Any) -> Path:
    settings = {
        "region_name": "eu-west-1",
        "table_name": "t",
        "evaluator_queue_url": QUEUE + "evaluations",
        "scorer_queue_url": QUEUE + "scores",
        "access_key_id": "AKIAEXAMPLE",
        "secret_access_key": SECRET,
        "matches_file": "catalogue.yml",
        "cache_dir": "cache",
        "workers": 3,
        "timeout": 100,
        "visibility_timeout": 30,
        **extra,
    }
    (tmp_path / "catalogue.yml").write_text("{}\n")
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(settings))
    path.chmod(0o600)
    return path


def _check_object(doc: dict[str, Any]) -> None:
    assert doc["apiVersion"] == "v1" or "/" in doc["apiVersion"]
    metadata = doc["metadata"]
    assert DNS_LABEL.fullmatch(metadata["name"]) and len(metadata["name"]) <= 63
    assert DNS_LABEL.fullmatch(metadata["namespace"])
    for key, value in {**metadata.get("labels", {}), **metadata.get("annotations", {})}.items():
        assert isinstance(key, str) and isinstance(value, str), (key, value)


def _check_container(container: dict[str, Any]) -> None:
    assert DNS_LABEL.fullmatch(container["name"])
    assert isinstance(container["image"], str) and container["image"]
    assert all(isinstance(arg, str) for arg in container.get("args", []))
    for env in container.get("env", []):
        assert isinstance(env["name"], str) and isinstance(env["value"], str)
    for port in container.get("ports", []):
        assert isinstance(port["containerPort"], int) and 0 < port["containerPort"] < 65536


def check_structure(docs: dict[str, dict[str, Any]]) -> None:
    """What the API server and KEDA would refuse, for the five kinds printed."""
    assert set(docs) == {
        "ServiceAccount", "ConfigMap", "Deployment", "TriggerAuthentication", "ScaledObject"
    }  # fmt: skip
    for doc in docs.values():
        _check_object(doc)
    assert all(isinstance(v, str) for v in docs["ConfigMap"]["data"].values())
    deployment = docs["Deployment"]
    assert deployment["apiVersion"] == "apps/v1"
    spec = deployment["spec"]
    template = spec["template"]
    assert spec["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    pod = template["spec"]
    assert isinstance(pod["terminationGracePeriodSeconds"], int)
    assert pod["serviceAccountName"] == docs["ServiceAccount"]["metadata"]["name"]
    for container in pod["containers"] + pod.get("initContainers", []):
        _check_container(container)
        volumes = {volume["name"] for volume in pod["volumes"]}
        assert {mount["name"] for mount in container.get("volumeMounts", [])} <= volumes
    config_volumes = [v for v in pod["volumes"] if "configMap" in v]
    assert [v["configMap"]["name"] for v in config_volumes] == [
        docs["ConfigMap"]["metadata"]["name"]
    ]
    auth = docs["TriggerAuthentication"]
    assert auth["apiVersion"] == "keda.sh/v1alpha1"
    assert auth["spec"]["podIdentity"]["provider"] in {"aws", "aws-eks"}
    scaled = docs["ScaledObject"]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    target = scaled["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert 0 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]
    for trigger in scaled["spec"]["triggers"]:
        assert trigger["type"] == "aws-sqs-queue"
        assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
        # KEDA rejects trigger metadata that is not a string.
        assert all(isinstance(value, str) for value in trigger["metadata"].values())


def _runner(docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    [runner] = containers
    return runner


def _grace_argument(docs: dict[str, dict[str, Any]]) -> int:
    args = _runner(docs)["args"]
    return int(args[args.index("--grace-period") + 1])


def test_the_shipped_manifests_are_what_the_command_prints_from_the_example() -> None:
    printed = _print("--config", str(EXAMPLE.relative_to(DEPLOY.parents[1])), "--image",
                     EXAMPLE_IMAGE)  # fmt: skip
    assert printed == SHIPPED.read_text(), (
        "deploy/kubernetes/evaluator.yml is stale: print it again (its first comment says how)"
    )
    check_structure(_documents(printed))


def test_the_fleet_follows_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    docs = _documents(_print("--config", str(_config(tmp_path))))
    check_structure(docs)
    trigger = docs["ScaledObject"]["spec"]["triggers"][0]["metadata"]
    assert trigger["queueURL"] == QUEUE + "evaluations"
    assert trigger["queueLength"] == "3"  # workers: the messages one pod takes at once
    assert trigger["scaleOnInFlight"] == "true"
    assert trigger["awsRegion"] == "eu-west-1"
    # No grace_period: the drain lasts as long as a job may (timeout) and one heartbeat window.
    assert _grace_argument(docs) == 100 + 30
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > _grace_argument(docs)
    assert _runner(docs)["args"][0] == "evaluator"


def test_the_pods_config_loads_and_holds_no_aws_keys(tmp_path: Path) -> None:
    printed = _print("--config", str(_config(tmp_path)), "--mode", "scorer")
    assert SECRET not in printed and "AKIAEXAMPLE" not in printed
    assert "left out (the pods' IAM role gives AWS access): access_key_id" in printed
    docs = _documents(printed)
    assert docs["ScaledObject"]["spec"]["triggers"][0]["metadata"]["queueURL"] == QUEUE + "scores"
    folder = tmp_path / "pod"
    folder.mkdir()
    for name, text in docs["ConfigMap"]["data"].items():
        (folder / name).write_text(text)
    loaded = load_config(folder / "config.yml").config
    assert loaded.access_key_id is None and loaded.secret_access_key is None
    assert loaded.matches_file == folder / "matches.yml"
    assert str(loaded.cache_dir) == "/var/lib/opthub-runner/cache"
    assert loaded.metrics_host == "0.0.0.0" and loaded.metrics_port == 9100
    probe = _runner(docs)["livenessProbe"]["httpGet"]
    assert probe["path"] == "/healthz"


def test_a_grace_period_in_the_config_is_the_drain(tmp_path: Path) -> None:
    docs = _documents(_print("--config", str(_config(tmp_path, grace_period=600))))
    assert _grace_argument(docs) == 600
    assert docs["Deployment"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 600


def test_the_structural_check_refuses_a_broken_reference() -> None:
    docs = _documents(SHIPPED.read_text())
    docs["ScaledObject"]["spec"]["scaleTargetRef"]["name"] = "another-deployment"
    with pytest.raises(AssertionError):
        check_structure(docs)
    docs = _documents(SHIPPED.read_text())
    docs["ScaledObject"]["spec"]["triggers"][0]["metadata"]["queueLength"] = 2
    with pytest.raises(AssertionError):
        check_structure(docs)


def test_a_missing_queue_is_one_line(tmp_path: Path) -> None:
    path = _config(tmp_path)
    settings = yaml.safe_load(path.read_text())
    del settings["scorer_queue_url"]
    path.write_text(yaml.safe_dump(settings))
    result = CliRunner().invoke(
        main, ["fleet", "kubernetes", "--config", str(path), "--mode", "scorer"]
    )
    assert result.exit_code == 78
    assert "scorer_queue_url is not set" in result.output
    assert "Traceback" not in result.output
