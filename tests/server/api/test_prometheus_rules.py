"""deploy/prometheus and deploy/grafana only ask for metrics the server really exposes.

promtool is not installed here: the rules file is parsed as YAML, its structure checked the way
Prometheus reads it, and the metric names in every expression (rules and dashboard panels) are
compared with the names on ``/metrics`` of a running server connected to a real Mosquitto.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from binsight.server.config import ServerConfig
from binsight.server.metrics import render_metrics
from binsight.server.runtime import ServerRuntime

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
RULES = DEPLOY / "prometheus" / "binsight-rules.yml"
DASHBOARD = DEPLOY / "grafana" / "binsight-dashboard.json"

#: Series Prometheus makes itself for every target, not the server.
SYNTHETIC = {"up"}
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
    "offset", "le", "inf", "nan",
}  # fmt: skip
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def metric_names(expr: str) -> set[str]:
    """Identifiers of ``expr`` that are metric names: not functions, keywords, labels or strings."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges, subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word, rest = m.group(0), text[m.end() :].lstrip()
        if rest.startswith("(") or word.lower() in PROMQL_WORDS or re.fullmatch(r"\d.*|e\d+", word):
            continue
        if text[m.start() - 1 : m.start()].isdigit():  # the exponent of 4e9
            continue
        names.add(word)
    return names


@pytest.fixture
def exposed_names(mosquitto: object, make_config: Callable[..., ServerConfig]) -> set[str]:
    """Every sample name on /metrics of a server with ingest, alerts and a broker connection."""
    rt = ServerRuntime(
        make_config(mqtt={"port": mosquitto.port, "client_id": "srv-rules"}, alerts={"enabled": True}),  # type: ignore[attr-defined]
        http=False,
    )
    rt.start(listen=False)
    try:
        body = render_metrics(rt.state)
    finally:
        rt.stop()
    names = {line.split("{")[0].split(" ")[0] for line in body.splitlines() if line and line[0] != "#"}
    # A labelled histogram has no series before its first observation, only its # TYPE line.
    for family in re.findall(r"^# TYPE (\S+) histogram$", body, re.M):
        names |= {family + suffix for suffix in HISTOGRAM_SUFFIXES}
    return names


def known(name: str, exposed: set[str]) -> bool:
    return name in exposed or name in SYNTHETIC


def test_metric_name_extraction() -> None:
    """The checker itself: functions, labels, keywords and numbers are not metric names."""
    expr = (
        'histogram_quantile(0.95, sum without (instance, le) (rate(a_bucket{route=~"/api/.*"}[10m])))'
        " > 4e9 and on (x) b"
    )
    assert metric_names(expr) == {"a_bucket", "b"}
    assert metric_names("max without (instance) (binsight_devices - binsight_devices_online) > 0") == {
        "binsight_devices",
        "binsight_devices_online",
    }


def test_rules_parse_and_name_only_exposed_metrics(exposed_names: set[str]) -> None:
    """Every rule has a name, an expression, labels and annotations where Prometheus wants them;
    every metric its expression names is one /metrics exposes; the required alerts are there."""
    doc = yaml.safe_load(RULES.read_text())
    assert set(doc) == {"groups"}
    alerts: dict[str, str] = {}
    for group in doc["groups"]:
        assert set(group) <= {"name", "interval", "rules", "limit"} and group["name"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, rule
            assert isinstance(rule["expr"], str) and rule["alert"] not in alerts
            assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
            if "for" in rule:
                assert re.fullmatch(r"\d+[smhd]", rule["for"]), rule["alert"]
            assert rule["labels"]["severity"] in {"info", "warning", "critical"}
            assert rule["annotations"]["summary"]
            alerts[rule["alert"]] = rule["expr"]
    for name, expr in alerts.items():
        names = metric_names(expr)
        assert names, name
        unknown = {n for n in names if not known(n, exposed_names)}
        assert not unknown, f"{name}: {unknown} not on /metrics"
    required = {
        "BinsightCamerasOffline",
        "BinsightSeqGaps",
        "BinsightMessagesRejected",
        "BinsightBinsOverflowing",
    }
    assert required <= set(alerts)


def test_dashboard_queries_name_only_exposed_metrics(exposed_names: set[str]) -> None:
    """The Grafana dashboard is valid JSON; each panel has a query, each query exposed metrics only."""
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["panels"]
    for panel in dash["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            unknown = {n for n in metric_names(target["expr"]) if not known(n, exposed_names)}
            assert not unknown, f"{panel['title']}: {unknown} not on /metrics"
