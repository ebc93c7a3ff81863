"""deploy/prometheus and deploy/grafana: every alert tested by promtool, every query a real metric.

``promtool`` (Debian's ``prometheus`` package; scripts/setup.sh installs it)
checks the rules and runs their unit tests; these tests skip without it on a
developer's machine and fail in CI. The metric names are read from the
runner's own registry (the Monitor's), with the suffixes Prometheus gives
counters and histograms, so a renamed metric breaks the rules here and not in
an operator's silent dashboard.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from opthub_runner_admin.config.loading import parse_config
from opthub_runner_admin.observe.metrics import OUTCOMES
from opthub_runner_admin.observe.monitor import Monitor

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "opthub-runner.rules.yml"
RULE_TESTS = DEPLOY / "prometheus" / "opthub-runner.tests.yml"
DASHBOARD = DEPLOY / "grafana" / "opthub-runner.json"
SEVERITIES = {"critical", "warning", "info"}
#: Series that Prometheus itself makes for every scrape target.
PROMETHEUS_SERIES = {"up"}
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
OUTCOME_MATCHER = re.compile(r'outcome\s*=~?\s*"([^"]*)"')


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is required in CI (Debian's prometheus; scripts/setup.sh)")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return found


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _alerts() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "alert" in rule]


def _dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


#: The series Prometheus scrapes of each kind of metric family (the family's name + suffix).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created", ""),
    "info": ("_info",),
}


def exported_names() -> set[str]:
    """Every series name a runner's /metrics holds (``_total``, ``_bucket``... included).

    Read from each family's kind, not from the samples alone: a labelled metric
    (by ``match``, say) has no sample until its first child exists.
    """
    # Built as a runner builds it: every observer registers into the monitor's one registry.
    config = parse_config("region_name: r\ntable_name: t\n").config
    registry = Monitor(mode="evaluator", config=config, stats=lambda: None).metrics.registry
    names = set()
    for family in registry.collect():
        names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
        names |= {sample.name for sample in family.samples}
    return names


def metric_names(expr: str) -> set[str]:
    """The runner's metric and recorded names an expression reads (``opthub_runner...``)."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    return {name for name in NAME.findall(without_strings) if name.startswith("opthub")}


def test_promtool_accepts_the_rules_and_their_tests_pass() -> None:
    promtool = _promtool()
    for command in (["check", "rules", RULES.name], ["test", "rules", RULE_TESTS.name]):
        done = subprocess.run(
            [promtool, *command],
            cwd=RULES.parent,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_each_alert_has_a_severity_a_summary_and_a_description() -> None:
    alerts = _alerts()
    assert len(alerts) >= 5
    for alert in alerts:
        assert alert["labels"]["severity"] in SEVERITIES, alert["alert"]
        annotations = alert["annotations"]
        assert annotations["summary"].strip(), alert["alert"]
        assert len(annotations["description"]) > len(annotations["summary"]), alert["alert"]


def test_each_alert_is_seen_firing_in_the_rule_tests() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {alert["alert"] for alert in _alerts()} <= fired


def test_every_query_names_a_metric_the_runner_exports() -> None:
    exported = exported_names()
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    assert all(name.startswith("opthub_runner:") for name in recorded)
    queries = [rule["expr"] for rule in _rules()] + _dashboard_queries()
    unknown = {
        name: expr
        for expr in queries
        for name in metric_names(expr)
        if name not in exported and name not in recorded
    }
    assert not unknown, f"metrics no runner exports: {sorted(unknown)}"
    # Each query reads at least one series; those that are not the runner's are Prometheus's.
    for expr in queries:
        assert metric_names(expr) or set(NAME.findall(expr)) & PROMETHEUS_SERIES, expr
    for expr in queries:
        for matcher in OUTCOME_MATCHER.findall(expr):
            assert set(matcher.split("|")) <= set(OUTCOMES), expr


def test_the_name_check_sees_a_misspelt_metric() -> None:
    # The check above must not pass an expression whose metric the runner lacks.
    names = metric_names('rate(opthub_runner_job_total{outcome="failed"}[5m]) / up')
    assert names == {"opthub_runner_job_total"}
    assert "opthub_runner_job_total" not in exported_names()
    assert "opthub_runner_jobs_total" in exported_names()
    assert "opthub_runner_job_duration_seconds_bucket" in exported_names()


def test_a_labelled_metric_without_samples_is_still_exported() -> None:
    from prometheus_client import CollectorRegistry, Histogram

    registry = CollectorRegistry()
    Histogram("opthub_runner_example_seconds", "x", ["mode", "match"], registry=registry)
    [family] = registry.collect()
    assert family.samples == []  # no child yet: the samples alone would miss it
    names = {family.name + suffix for suffix in SUFFIXES[family.type]}
    assert "opthub_runner_example_seconds_bucket" in names


def test_the_dashboard_takes_its_datasource_as_a_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
