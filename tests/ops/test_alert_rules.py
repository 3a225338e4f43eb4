"""The alert rules checked and unit-tested by Prometheus's own `promtool`, and the chart's copy of them."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.ops.prometheus import prometheus_binary

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = REPO / "deploy" / "prometheus" / "alerts_test.yml"
CHART_COPY = REPO / "helm" / "notion-sync" / "files" / "alerts.yml"
ALERTS = {
    "ExportFailed",
    "NoRecentSuccess",
    "ExportStuck",
    "NotionTokenRevoked",
    "NotionRateLimited",
    "RequestBudgetSaturated",
    "NoWorkerPolling",
    "WorkerMemoryNearLimit",
}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [prometheus_binary("promtool"), *args], capture_output=True, text=True, timeout=60, cwd=RULES.parent
    )


def test_rules_are_valid() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 9 rules found" in checked.stdout


def test_every_rule_fires_and_stays_quiet_in_promtool_tests() -> None:
    tested = promtool("test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    text = RULE_TESTS.read_text()
    for alert in ALERTS:
        # A case where it fires (expected alerts) and one where it must not (none expected).
        assert f"name: {alert} fires" in text and f"name: {alert} stays quiet" in text, alert


def test_a_broken_expectation_fails(tmp_path: Path) -> None:
    """The promtool run above can fail: the same tests against rules reading misnamed metrics do."""
    misnamed = RULES.read_text().replace("notion_sync_", "misnamed_")
    (tmp_path / "alerts.yml").write_text(misnamed)
    (tmp_path / "alerts_test.yml").write_text(RULE_TESTS.read_text())
    tested = promtool("test", "rules", str(tmp_path / "alerts_test.yml"))
    assert tested.returncode != 0
    assert all(f"alertname: {alert}," in tested.stdout + tested.stderr for alert in ALERTS)


def test_the_chart_renders_the_same_rules() -> None:
    assert CHART_COPY.read_text() == RULES.read_text(), f"copy {RULES} to {CHART_COPY}"
