"""The one list of AWS permissions is the calls the code makes, and what the start checks try.

Every boto3 client call under aws/, queue/, store/ and fleet/ (read from the
source: the method names of botocore's own service models, and paginators)
must be an operation of ``PERMISSIONS`` (or an unsigned one), and every
permission listed must be called somewhere; every permission the list says
is probed has a probe, and the policy in docs/operating.md lists exactly the
runner's actions.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import boto3

from opthub_runner_admin.aws.permissions import PERMISSIONS, UNSIGNED_OPERATIONS, runner_actions
from opthub_runner_admin.queue.sqs_permissions import sqs_probes
from opthub_runner_admin.store.dynamodb_permissions import dynamodb_probes

PACKAGE = Path(__file__).resolve().parents[2] / "opthub_runner_admin"
PARTS = ("aws", "queue", "store", "fleet")
SERVICES = ("sqs", "dynamodb", "cloudwatch", "cognito-idp")


def boto3_methods() -> dict[str, str]:
    """Every client method name of the services used -> its API operation."""
    session = boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    methods: dict[str, str] = {}
    for service in SERVICES:
        client = session.client(service)  # type: ignore[call-overload]
        methods.update(client.meta.method_to_api_mapping)
    return methods


def operations_called() -> dict[str, set[str]]:
    """API operation -> the files that call it, from every call of a boto3 method name."""
    methods = boto3_methods()
    found: dict[str, set[str]] = {}
    for part in PARTS:
        for path in (PACKAGE / part).rglob("*.py"):
            source = path.read_text(encoding="utf-8")
            if "boto" not in source:  # the in-memory seams: their own methods, no AWS
                continue
            tree = ast.parse(source)
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                    continue
                name = node.func.attr
                if name == "get_paginator" and node.args:
                    arg = node.args[0]
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        name = arg.value
                if name in methods:
                    found.setdefault(methods[name], set()).add(str(path.relative_to(PACKAGE)))
    return found


def test_every_boto3_call_is_a_listed_permission_and_every_listed_one_is_called() -> None:
    called = operations_called()
    listed = {op for permission in PERMISSIONS for op in permission.operations}
    assert "BatchGetItem" in called and "TransactWriteItems" in called  # the scan sees calls
    unlisted = set(called) - listed - UNSIGNED_OPERATIONS
    assert not unlisted, {op: called[op] for op in unlisted}
    assert not listed - set(called), "listed but never called"


def test_the_probes_are_the_permissions_marked_probe() -> None:
    probed = set(sqs_probes(None, "http://q/1/name", object())) | set(  # type: ignore[arg-type]
        dynamodb_probes(None, "table")  # type: ignore[arg-type]
    )
    assert probed == {p.action for p in PERMISSIONS if p.probe == "probe"}
    assert "dynamodb:BatchGetItem" in probed


def test_the_documented_policy_lists_exactly_the_runners_actions() -> None:
    text = (PACKAGE.parent / "docs" / "operating.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- runner-policy -->\s*```json\n(.*?)```", text, re.S)
    assert block, "docs/operating.md has no runner policy block"
    policy = json.loads(block.group(1))
    actions = {a for statement in policy["Statement"] for a in statement["Action"]}
    assert actions == {p.action for p in runner_actions()}
