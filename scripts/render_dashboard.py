"""The Grafana dashboard's picture without a Grafana server: each panel's queries of
deploy/grafana/dashboards/notion-sync.json run against a live Prometheus (range queries; instant ones
for tables and stats), drawn as inline SVG charts laid out by the panels' grid positions, and the page
screenshotted in headless Chromium (Debian's, through Playwright).

    python scripts/render_dashboard.py --prometheus http://127.0.0.1:9090 --minutes 30
    python scripts/render_dashboard.py --demo   # its own Temporal, emulator, worker and Prometheus

Grafana's variables get what Grafana would give them: `$__rate_interval` the rate window given,
`$__interval` the step, `$__range` the shown range, a query variable (`$workspace`) all values.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import json
import math
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "notion-sync.json"
SCREENSHOT = REPO / "docs" / "screenshots" / "dashboard.png"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-sync"]
PAGE_WIDTH = 1600
ROW_HEIGHT = 30  # Grafana's pixels per grid unit
COLOURS = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9", "#96d98d"]

STYLE = """
body { margin: 0; background: #111217; color: #ccccdc; font: 12px Helvetica, Arial, sans-serif; }
header { padding: 10px 14px; font-size: 16px; }
header small { color: #8e8e9e; margin-left: 12px; font-size: 12px; }
main { position: relative; margin: 0 6px; }
.panel { position: absolute; background: #181b1f; border: 1px solid #2c3235; border-radius: 3px; }
.panel { overflow: hidden; }
.panel h2 { margin: 0; padding: 6px 8px; font-size: 13px; font-weight: 500; }
.row { position: absolute; font-size: 15px; font-weight: 500; padding-top: 6px; }
.body { padding: 0 4px; }
.grid { stroke: #2c3235; }
.axis, .legend { fill: #8e8e9e; font-size: 10px; }
.none { fill: #8e8e9e; font-size: 13px; text-anchor: middle; }
.stat { display: inline-block; margin: 6px 10px; }
.stat b { display: block; font-size: 26px; color: #73bf69; }
table { border-collapse: collapse; width: 100%; }
td, th { border-bottom: 1px solid #2c3235; padding: 4px 6px; text-align: left; }
"""


@dataclass
class Series:
    legend: str
    points: list[tuple[float, float]]


class DashboardError(Exception):
    """A dashboard or Prometheus answer this script cannot use; its message says which."""


def grafana_variables(
    dashboard: dict[str, Any], start: float, end: float, step: float, rate: str
) -> dict[str, str]:
    values = {"__rate_interval": rate, "__interval": f"{int(step)}s", "__range": f"{int(end - start)}s"}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            values[variable["name"]] = variable.get("allValue") or ".*"
    return values


def expand(expr: str, variables: dict[str, str]) -> str:
    """`$name` and `${name}` replaced, longest names first (`$__range` before `$__rate_interval`)."""
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", variables[name]).replace("$" + name, variables[name])
    if "$" in expr:
        raise DashboardError(f"a Grafana variable this script does not know is left in: {expr}")
    return expr


def legend(template: str, labels: dict[str, str], fallback: str) -> str:
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template or "")
    return text.strip() or fallback


class Prometheus:
    """Range and instant queries against Prometheus's HTTP API."""

    def __init__(self, url: str) -> None:
        self._http = httpx.Client(base_url=url, timeout=30)

    def _query(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        try:
            answer = self._http.get(path, params=params)
        except httpx.HTTPError as error:
            raise DashboardError(f"Prometheus at {self._http.base_url} did not answer: {error}") from error
        body = answer.json()
        if body.get("status") != "success":
            raise DashboardError(f"Prometheus refused {params['query']!r}: {body.get('error')}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def range(self, expr: str, template: str, start: float, end: float, step: float) -> list[Series]:
        params = {"query": expr, "start": str(start), "end": str(end), "step": str(step)}
        return [
            Series(
                legend(template, item["metric"], expr),
                [(float(t), float(v)) for t, v in item["values"] if math.isfinite(float(v))],
            )
            for item in self._query("/api/v1/query_range", params)
        ]

    def instant(self, expr: str, at: float) -> list[tuple[dict[str, str], float]]:
        return [
            (item["metric"], float(item["value"][1]))
            for item in self._query("/api/v1/query", {"query": expr, "time": str(at)})
        ]


def format_value(value: float, unit: str | None) -> str:
    if not math.isfinite(value):
        return "–"
    if unit == "percentunit":
        return f"{value * 100:.1f} %"
    if unit in ("bytes", "Bps"):
        for scale, prefix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
            if abs(value) >= scale:
                return f"{value / scale:.1f} {prefix}" + ("/s" if unit == "Bps" else "")
        return f"{value:.0f} B" + ("/s" if unit == "Bps" else "")
    if unit == "s":
        if abs(value) >= 3600:
            return f"{value / 3600:.1f} h"
        if abs(value) >= 60:
            return f"{value / 60:.1f} min"
        return f"{value:.2g} s" if abs(value) < 10 else f"{value:.0f} s"
    # Grafana's custom units: "suffix:pages/s" prints the text after the number.
    suffix = " " + unit.removeprefix("suffix:") if unit and unit.startswith("suffix:") else ""
    suffix = {"reqps": " req/s", "ops": " /s"}.get(unit or "", suffix)
    return (f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}") + suffix


def svg_chart(
    series: Sequence[Series], unit: str | None, width: int, height: int, span: tuple[float, float]
) -> str:
    """A line chart: y from 0 (or the lowest value) to the highest, time along x, a legend below."""
    legend_rows = math.ceil(len(series) / 3) if series else 0
    plot_h = height - 28 - 16 * legend_rows
    left, right, top = 70, 30, 8
    plot_w = width - left - right
    values = [v for s in series for _, v in s.points]
    if not values:
        empty = f'<text x="{width // 2}" y="{height // 2}" class="none">No data</text>'
        return f'<svg width="{width}" height="{height}">{empty}</svg>'
    low, high = min(0.0, min(values)), max(values)
    high = high if high > low else low + 1
    start, end = span

    def x(t: float) -> float:
        return left + (t - start) / (end - start) * plot_w

    def y(v: float) -> float:
        return top + (1 - (v - low) / (high - low)) * (plot_h - top)

    parts = [f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">']
    for tick in range(5):
        value = low + (high - low) * tick / 4
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" class="grid"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{y(value) + 4:.1f}" class="axis" text-anchor="end">'
            f"{html.escape(format_value(value, unit))}</text>"
        )
    for tick in range(5):
        t = start + (end - start) * tick / 4
        label = datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S")
        parts.append(
            f'<text x="{x(t):.1f}" y="{plot_h + 14}" class="axis" text-anchor="middle">{label}</text>'
        )
    for index, one in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in one.points)
        if len(one.points) == 1:
            ((t, v),) = one.points
            parts.append(f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="2" fill="{colour}"/>')
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        column, row = index % 3, index // 3
        lx, ly = left + column * (plot_w // 3), plot_h + 30 + row * 16
        parts.append(f'<rect x="{lx}" y="{ly - 8}" width="12" height="4" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 16}" y="{ly - 3}" class="legend">{html.escape(one.legend[:48])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", []) if panel["type"] == "row" else []


def render_panel(
    panel: dict[str, Any],
    prometheus: Prometheus,
    window: tuple[float, float, float],
    variables: dict[str, str],
) -> str:
    start, end, step = window
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
    width = panel["gridPos"]["w"] * PAGE_WIDTH // 24 - 12
    height = panel["gridPos"]["h"] * ROW_HEIGHT - 34
    targets = [(expand(t["expr"], variables), t.get("legendFormat", "")) for t in panel["targets"]]
    if panel["type"] == "timeseries":
        series = [s for expr, template in targets for s in prometheus.range(expr, template, start, end, step)]
        return svg_chart(series, unit, width, height, (start, end))
    if panel["type"] == "stat":
        cells = []
        for expr, template in targets:
            for labels, value in prometheus.instant(expr, end) or [({}, float("nan"))]:
                cells.append(
                    f'<div class="stat"><b>{html.escape(format_value(value, unit))}</b>'
                    f"<span>{html.escape(legend(template, labels, ''))}</span></div>"
                )
        return "".join(cells)
    if panel["type"] == "table":
        rows: dict[str, list[str]] = {}
        for index, (expr, _template) in enumerate(targets):
            for labels, value in prometheus.instant(expr, end):
                key = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
                rows.setdefault(key, ["–"] * len(targets))[index] = format_value(
                    value, unit if index == 0 else "short"
                )
        header = "".join(f"<th>{html.escape(t[1])}</th>" for t in targets)
        body = "".join(
            f"<tr><td>{html.escape(key)}</td>"
            + "".join(f"<td>{html.escape(c)}</td>" for c in cells)
            + "</tr>"
            for key, cells in sorted(rows.items())
        )
        return f"<table><tr><th></th>{header}</tr>{body or '<tr><td>No data</td></tr>'}</table>"
    raise DashboardError(f"panel {panel['title']!r}: type {panel['type']!r} is not drawn by this script")


def render_page(
    dashboard: dict[str, Any], prometheus: Prometheus, window: tuple[float, float, float], rate: str
) -> str:
    start, end, step = window
    variables = grafana_variables(dashboard, start, end, step, rate)
    boxes = []
    for panel in panels(dashboard):
        grid = panel["gridPos"]
        style = (
            f"left:{grid['x'] * PAGE_WIDTH / 24:.0f}px;top:{grid['y'] * ROW_HEIGHT}px;"
            f"width:{grid['w'] * PAGE_WIDTH / 24 - 8:.0f}px;height:{grid['h'] * ROW_HEIGHT - 8}px"
        )
        title = html.escape(panel["title"])
        if panel["type"] == "row":
            boxes.append(f'<div class="row" style="{style}">{title}</div>')
            continue
        body = render_panel(panel, prometheus, window, variables)
        boxes.append(
            f'<div class="panel" style="{style}"><h2>{title}</h2><div class="body">{body}</div></div>'
        )
    bottom = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels(dashboard)) * ROW_HEIGHT
    shown = " – ".join(datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") for t in (start, end))
    title = html.escape(dashboard["title"])
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title><style>{STYLE}</style>'
        f"</head><body><header>{title}<small>{shown}</small></header>"
        f'<main style="width:{PAGE_WIDTH}px;height:{bottom}px">{"".join(boxes)}</main></body></html>'
    )


def screenshot(page_html: str, destination: Path) -> None:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise DashboardError(f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        page_file = Path(folder) / "dashboard.html"
        page_file.write_text(page_html)
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": PAGE_WIDTH + 12, "height": 900})
            page.goto(page_file.as_uri())
            page.screenshot(path=str(destination), full_page=True)
        finally:
            browser.close()


def render(prometheus_url: str, start: float, end: float, step: float, rate: str, out: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    page_html = render_page(dashboard, Prometheus(prometheus_url), (start, end, step), rate)
    screenshot(page_html, out)
    print(f"wrote {out}")


async def demo(out: Path, exports: int) -> None:
    """A worker on its own dev server exporting an emulated workspace that rate-limits and fails a
    little, a second workspace whose token is refused, and Prometheus scraping it all; then the render."""
    sys.path.insert(0, str(REPO))
    from pydantic import SecretStr

    from notion_sync import observability
    from notion_sync.control import connect, start_export
    from notion_sync.devserver import free_port, start_dev_server
    from notion_sync.emulator.process import EmulatorProcess
    from notion_sync.models import ExportInput, ExportOptions
    from notion_sync.settings import Settings
    from notion_sync.workers import run_worker
    from tests.ops.prometheus import PrometheusProcess, accepted_and_revoked

    if shutil.which("prometheus") is None:
        raise DashboardError("the demo needs Prometheus: apt-get install -y prometheus")

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        server = start_dev_server(folder / "temporal", port=free_port(), ui_port=None, persist=False)
        emulator_options: dict[str, Any] = {
            "rate": 30,
            "burst": 10,
            "latency_ms": 15,
            "fault_503": 0.01,
            "fault_529": 0.01,
        }
        try:
            with EmulatorProcess(pages=120, seed=11, **emulator_options) as emulator:
                settings = Settings.model_construct(
                    **{
                        **Settings().model_dump(),
                        "notion_token": SecretStr(emulator.token),
                        "notion_base_url": emulator.base_url,
                        "state_dir": folder / "state",
                        "task_queue": "dashboard-demo",
                        "requests_per_second": 40.0,
                        "burst": 10,
                        "metrics_port": free_port(),
                    }
                )
                client = await connect(
                    settings, server.address, runtime=observability.metrics_runtime(settings)
                )
                worker = asyncio.create_task(run_worker(settings, client, accepted_and_revoked(emulator)))
                target = f"127.0.0.1:{settings.metrics_port}"
                try:
                    with contextlib.ExitStack() as stack:
                        try:
                            prometheus = stack.enter_context(
                                PrometheusProcess([target], [], folder / "prometheus")
                            )
                        except RuntimeError as error:  # it exited or never became ready; its log says why
                            raise DashboardError(str(error)) from error
                        start = time.time()
                        for number in range(exports):
                            workspace = "revoked" if number == exports // 2 else "acme"
                            request = ExportInput(
                                destination=str(folder / f"backup-{number % 2}"),
                                workspace=workspace,
                                options=ExportOptions(),
                            )
                            handle = await start_export(client, settings, request)
                            try:
                                await handle.result()
                            except Exception as error:  # the refused token's export fails on purpose
                                print(f"export {number} ({workspace}) failed: {type(error).__name__}")
                            await asyncio.sleep(3)
                        await asyncio.sleep(20)  # the gauges' next refresh and a few more scrapes
                        end = time.time()
                        # Playwright's sync API runs outside the event loop.
                        await asyncio.to_thread(render, prometheus.url, start - 5, end, 2.0, "10s", out)
                finally:
                    worker.cancel()
                    await asyncio.gather(worker, return_exceptions=True)
        finally:
            server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--prometheus", help="URL of a Prometheus that scrapes the workers")
    source.add_argument("--demo", action="store_true", help="start a worker and Prometheus, export, render")
    parser.add_argument("--minutes", type=float, default=60, help="time range shown, ending now")
    parser.add_argument("--rate-interval", default="1m", help="what $__rate_interval stands for")
    parser.add_argument("--exports", type=int, default=8, help="exports the demo runs")
    parser.add_argument("--out", type=Path, default=SCREENSHOT, help="where the PNG goes")
    args = parser.parse_args(argv)
    try:
        if args.demo:
            asyncio.run(demo(args.out, args.exports))
        else:
            end = time.time()
            start = end - args.minutes * 60
            render(args.prometheus, start, end, max(1.0, (end - start) / 300), args.rate_interval, args.out)
    except DashboardError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
