"""The Grafana dashboard checked structurally (no Grafana runs here): it loads, every panel has a query,
and every metric a query names is one the worker really exports. Ours are read from the code that
reports them (the metric-name literals handed to the meter in notion_sync/observability), the Temporal
SDK's from the metric definitions of the sdk-core sources shipped inside the installed temporalio
wheel; no hand-written list stands in for either. Provisioning files and compose mounts are checked
to point at what exists."""

from __future__ import annotations

import ast
import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import temporalio
import yaml

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "notion-sync.json"
PROVISIONING = REPO / "deploy" / "grafana" / "provisioning"
OBSERVABILITY = REPO / "notion_sync" / "observability"
SDK_CORE = Path(temporalio.__file__).parent / "bridge" / "sdk-core" / "crates"
COMPOSE = REPO / "docker-compose.temporal.yml"

# Series Prometheus itself attaches to every scrape target (documented in its "Jobs and instances").
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
# The CPU panel reads the worker's own `notion_sync_worker_cpu_seconds`, or on Kubernetes the kubelet's
# cAdvisor series (cAdvisor docs/storage/prometheus.md) for the chart's pods.
CONTAINER_SERIES = {"container_cpu_usage_seconds_total"}
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")
# PromQL words that are neither functions nor metrics; the first group is followed by a label list.
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
OPERATOR_KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2"}
_PROMQL_TOKEN = re.compile(
    r"""(?P<skip>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|\{[^}]*\}|\[[^\]]*\]|\$\{\w+\}|\$\w+"""
    r"""|\d+(?:\.\d+)?(?:[eE][+-]?\d+|[smhdwy]+)?)"""
    r"""|(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)|(?P<open>\()|(?P<close>\))|(?P<other>\S)"""
)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions (followed by
    `(`), aggregations (followed by `by`/`without`), keywords, or labels (in `{...}` matchers or a
    `by (...)` list); strings, ranges and Grafana variables are skipped."""
    tokens = [(m.lastgroup, m.group()) for m in _PROMQL_TOKEN.finditer(expr)]
    names: set[str] = set()
    index = 0
    while index < len(tokens):
        kind, text = tokens[index]
        following = tokens[index + 1][0] if index + 1 < len(tokens) else None
        following_text = tokens[index + 1][1].lower() if index + 1 < len(tokens) else ""
        if kind == "name" and text.lower() in LABEL_LIST_KEYWORDS:
            if following == "open":  # skip the label list
                while index < len(tokens) and tokens[index][0] != "close":
                    index += 1
        elif (
            kind == "name"
            and text.lower() not in OPERATOR_KEYWORDS
            and following != "open"
            and following_text not in ("by", "without")  # `sum by (...) (...)`: an aggregation
        ):
            names.add(text)
        index += 1
    return names


def _called(call: ast.Call) -> str:
    """What a call invokes: `create_counter` for `meter.create_counter(...)`, `_count` for `_count(...)`."""
    function = call.func
    return function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")


def _meter_helpers(tree: ast.Module) -> dict[str, str]:
    """Functions that hand their first parameter to a meter's create_* as the metric name, with the
    create_* they call (`_count(name, ...)` -> `create_counter`)."""
    helpers: dict[str, str] = {}
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef) or not function.args.args:
            continue
        first = function.args.args[0].arg
        for call in ast.walk(function):
            if (
                isinstance(call, ast.Call)
                and _called(call).startswith("create_")
                and call.args
                and isinstance(call.args[0], ast.Name)
                and call.args[0].id == first
            ):
                helpers[function.name] = _called(call)
    return helpers


@functools.cache
def worker_metrics() -> set[str]:
    """Every series our code reports: each metric-name literal passed to a meter's create_* (or to a
    helper that passes it on) in notion_sync/observability; a histogram as its `_bucket`, `_sum` and
    `_count` series (the Prometheus exporter adds no `_total` or unit suffix: see metrics_runtime)."""
    names: set[str] = set()
    for module in sorted(OBSERVABILITY.glob("*.py")):
        tree = ast.parse(module.read_text(), str(module))
        helpers = _meter_helpers(tree)
        for call in ast.walk(tree):
            if not isinstance(call, ast.Call) or not call.args:
                continue
            name = call.args[0]
            creator = helpers.get(_called(call), _called(call))
            if not creator.startswith("create_") or not isinstance(name, ast.Constant):
                continue
            assert isinstance(name.value, str) and re.fullmatch(r"[a-z][a-z0-9_]*", name.value), name.value
            if creator.startswith("create_histogram"):
                names |= {name.value + suffix for suffix in HISTOGRAM_SERIES}
            else:
                names.add(name.value)
    return names


@functools.cache
def sdk_metrics() -> set[str]:
    """The Temporal SDK's series, from the `MetricParameters { name: ... }` definitions of the
    sdk-core sources in the installed temporalio wheel, with the runtime's `temporal_` prefix."""
    sources = [
        text
        for path in SDK_CORE.rglob("*.rs")
        if "/tests/" not in path.as_posix()
        and ("MetricParameters" in (text := path.read_text()) or "_NAME: &str" in text)
    ]
    if not sources:
        pytest.fail(f"the Temporal sdk-core sources are missing from the temporalio wheel ({SDK_CORE})")
    constants = {
        m.group(1): m.group(2)
        for text in sources
        for m in re.finditer(r'(?:const|static) ([A-Z0-9_]+): &str =\s*"([a-z0-9_]+)";', text)
    }
    definition = re.compile(r'(\w+)\(MetricParameters \{\s*name: (?:"([a-z0-9_]+)"|([A-Z0-9_]+))\.into\(\)')
    names: set[str] = set()
    for text in sources:
        for method, literal, constant in definition.findall(text):
            base = "temporal_" + (literal or constants[constant])
            names |= {base + s for s in HISTOGRAM_SERIES} if "histogram" in method else {base}
    return names


def load_dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested ones included, rows themselves excluded."""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for each panel target and each query variable."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} {target['refId']}", target.get("expr", "")
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            yield f"variable {variable['name']}", variable["definition"]


def test_the_parser_finds_metrics_and_only_metrics() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, reason)"
        ' (rate(a_seconds_bucket{x="y", z=~"$ws"}[$__rate_interval])))'
        " / on (instance) group_left (kind) max(b_total offset 5m) by (destination) or vector(1e3)"
        " - time() * count without (phase) (c)"
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b_total", "c"}
    assert metric_names("label_values(notion_sync_exports_started_total, workspace)") == {
        "notion_sync_exports_started_total",
        "workspace",  # a label argument reads as a name: variables are checked against labels below
    }


def test_the_known_metrics_are_read_from_the_code_and_the_sdk() -> None:
    ours, sdk = worker_metrics(), sdk_metrics()
    # Names the worker has always exported (tests/test_observability.py scrapes them from a live worker).
    assert {"notion_sync_notion_requests_total", "notion_sync_rate_limit_wait_seconds_bucket"} <= ours
    assert "notion_sync_rate_limit_wait_seconds" not in ours  # a histogram is only its series
    assert not [name for name in ours if not name.startswith("notion_sync_")]  # no context var names
    assert {
        "temporal_activity_execution_failed",
        "temporal_worker_task_slots_available",
        "temporal_num_pollers",
        "temporal_activity_execution_latency_bucket",
        "temporal_request_failure",
    } <= sdk
    assert "temporal_activity_execution_failed_bucket" not in sdk


def test_dashboard_loads_with_a_prometheus_datasource_variable() -> None:
    dashboard = load_dashboard()
    assert dashboard["uid"] == "notion-sync" and dashboard["schemaVersion"] >= 39
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels(dashboard):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_every_panel_has_a_query_naming_only_exported_metrics() -> None:
    dashboard = load_dashboard()
    known = worker_metrics() | sdk_metrics() | PROMETHEUS_SERIES | CONTAINER_SERIES
    for panel in panels(dashboard):
        targets = panel.get("targets", [])
        assert targets and all(t.get("expr", "").strip() for t in targets), panel["title"]
    labels = {v["name"] for v in dashboard["templating"]["list"]} | {"workspace"}
    unknown = {
        where: sorted(metric_names(expr) - known - (labels if where.startswith("variable") else set()))
        for where, expr in queries(dashboard)
    }
    assert not {where: names for where, names in unknown.items() if names}, "metrics no one exports"


def test_dashboard_covers_what_an_operator_asks() -> None:
    selected = {name for _, expr in queries(load_dashboard()) for name in metric_names(expr)}
    for needed in (
        "notion_sync_pages_exported_total",  # throughput
        "notion_sync_exports_running",  # progress by phase
        "notion_sync_notion_requests_total",  # requests
        "notion_sync_rate_limited_total",  # 429s
        "notion_sync_request_budget_requests_per_second",  # budget use
        "notion_sync_exports_finished_total",  # failures
        "notion_sync_last_success_timestamp_seconds",  # last success per destination
        "notion_sync_worker_resident_memory_bytes",  # worker memory
    ):
        assert needed in selected, needed


def test_provisioning_points_at_the_dashboard_and_the_compose_prometheus() -> None:
    (datasources,) = PROVISIONING.joinpath("datasources").glob("*.yml")
    (source,) = yaml.safe_load(datasources.read_text())["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"] is True
    stack = yaml.safe_load(COMPOSE.read_text())["services"]
    prometheus_port = stack["prometheus"]["healthcheck"]["test"][-1].split(":")[-1].split("/")[0]
    assert source["url"] == f"http://prometheus:{prometheus_port}"
    (providers,) = PROVISIONING.joinpath("dashboards").glob("*.yml")
    (provider,) = yaml.safe_load(providers.read_text())["providers"]
    mounts = dict(volume.removesuffix(":ro").split(":", 1)[::-1] for volume in stack["grafana"]["volumes"])
    # The provider's folder is where compose mounts deploy/grafana/dashboards, which holds the JSON.
    assert (REPO / mounts[provider["options"]["path"]] / DASHBOARD.name).is_file()
    assert (REPO / mounts["/etc/grafana/provisioning"]).resolve() == PROVISIONING.resolve()
