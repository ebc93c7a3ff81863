"""Looking for planted secrets in everything a runner produced.

A leak test plants recognisable secrets (the AWS secret key in the config,
the password in the environment, private match values) and then gathers
every text the runner left: its log lines and printed output, the items in
the table, the files it wrote. ``find_leaks`` names each secret found and
where, so a failure says what leaked through which channel. Commands added
later (``doctor``, ``try``) only need their output added to ``Outputs``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from opthub_runner_admin.platform_side.stack import AwsStack

_deserializer = TypeDeserializer()


class Outputs:
    """Named texts to search: ``add("evaluator log", text)``."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}

    def add(self, name: str, text: str) -> None:
        self.texts[name] = text

    def add_table(self, aws: AwsStack) -> None:
        """Every item of the test's table, one text per item (its key names the source)."""
        paginator = aws.clients.dynamodb.get_paginator("scan")
        for page in paginator.paginate(TableName=aws.table_name, ConsistentRead=True):
            for raw in page.get("Items", []):
                item = {key: _deserializer.deserialize(value) for key, value in raw.items()}
                self.add(f"item {item['ID']} {item['Trial']}", json.dumps(item, default=str))

    def add_files(self, root: Path, *, except_: Iterable[Path] = ()) -> None:
        """Every file under ``root`` (decoded loosely), except those meant to hold secrets."""
        skipped = {path.resolve() for path in except_}
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.resolve() not in skipped:
                self.add(f"file {path}", path.read_bytes().decode("utf-8", errors="replace"))


def find_leaks(outputs: Outputs, secrets: Mapping[str, str]) -> list[str]:
    """``"<secret name> in <output name>: ...context..."`` for every secret found anywhere."""
    found: list[str] = []
    for output, text in outputs.texts.items():
        for name, secret in secrets.items():
            at = text.find(secret)
            if at >= 0:
                context = text[max(0, at - 80) : at + len(secret) + 40].replace("\n", "\\n")
                found.append(f"{name} in {output}: ...{context}...")
    return found


def secret_values(value: Any, minimum: int = 20) -> list[str]:
    """The long strings inside a JSON document (tokens in a token file)."""
    if isinstance(value, str):
        return [value] if len(value) >= minimum else []
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in secret_values(v, minimum)]
    if isinstance(value, list):
        return [s for v in value for s in secret_values(v, minimum)]
    return []
