"""Structure of the Dockerfile and the compose stack (no Docker engine runs here): pinned images that
mirror temporalio/samples-server's compose files, health checks, start order, no secret in the files."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from notion_sync.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.temporal.yml"
# temporalio/samples-server compose/.env and docker-compose-postgres.yml.
UPSTREAM = {
    "postgresql": "postgres:16",
    "temporal-admin-tools": "temporalio/admin-tools:1.30.1",
    "temporal": "temporalio/server:1.30.1",
    "temporal-create-namespace": "temporalio/admin-tools:1.30.1",
    "temporal-ui": "temporalio/ui:2.34.0",
}


def services() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text())["services"])


def test_stack_has_temporal_postgres_ui_s3_and_worker_with_pinned_images() -> None:
    stack = services()
    assert set(UPSTREAM) | {"minio", "worker", "prometheus", "grafana"} == set(stack)
    for name, image in UPSTREAM.items():
        assert stack[name]["image"] == image
    for name, service in stack.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), name
    assert stack["worker"]["build"] == "."
    assert "7233:7233" in stack["temporal"]["ports"] and "8080:8080" in stack["temporal-ui"]["ports"]


def test_health_checks_and_start_order() -> None:
    stack = services()
    for name in ("postgresql", "temporal", "minio", "worker", "prometheus", "grafana"):
        assert stack[name]["healthcheck"]["test"], name
    conditions = {
        (name, dep, spec["condition"])
        for name, s in stack.items()
        for dep, spec in s.get("depends_on", {}).items()
    }
    assert conditions == {
        ("temporal-admin-tools", "postgresql", "service_healthy"),
        ("temporal", "temporal-admin-tools", "service_completed_successfully"),
        ("temporal-create-namespace", "temporal", "service_healthy"),
        ("temporal-ui", "temporal", "service_healthy"),
        ("worker", "temporal-create-namespace", "service_completed_successfully"),
        ("worker", "minio", "service_healthy"),
        ("grafana", "prometheus", "service_healthy"),
    }
    # The worker's health check hits its readiness endpoint on the configured health port.
    worker = stack["worker"]
    port = worker["environment"]["NOTION_SYNC_HEALTH_PORT"]
    assert f"127.0.0.1:{port}/readyz" in " ".join(worker["healthcheck"]["test"])


def test_no_secret_is_written_in_the_stack() -> None:
    text = COMPOSE.read_text()
    worker = services()["worker"]
    env = worker["environment"]
    assert "NOTION_TOKEN" not in env  # a compose secret, mounted as a file
    assert env["NOTION_TOKEN_FILE"] == "/run/secrets/notion_token"
    assert yaml.safe_load(text)["secrets"]["notion_token"] == {"environment": "NOTION_TOKEN"}
    assert env["AWS_SECRET_ACCESS_KEY"].startswith("${S3_SECRET_ACCESS_KEY:?")
    assert not re.search(r"\b(ntn|secret)_[A-Za-z0-9]{10,}", text)
    grafana = services()["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    # Every worker variable is a setting the worker reads, or one boto3 reads for the S3 destination.
    known = {f.alias for f in Settings.model_fields.values()} | {
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    }
    assert set(env) <= known, set(env) - known


def test_prometheus_scrapes_the_workers_and_loads_the_alert_rules() -> None:
    stack = services()
    mounts = {
        target: source
        for source, target in (v.removesuffix(":ro").split(":", 1) for v in stack["prometheus"]["volumes"])
    }
    for source in (mounts["/etc/prometheus/prometheus.yml"], mounts["/etc/prometheus/alerts.yml"]):
        assert (REPO / source).is_file(), source
    config = yaml.safe_load((REPO / mounts["/etc/prometheus/prometheus.yml"]).read_text())
    assert set(config["rule_files"]) <= set(mounts)
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "notion-sync-worker"]
    (discovery,) = job["dns_sd_configs"]
    # Every replica of the worker service, on the port its environment gives the metrics endpoint.
    assert discovery["names"] == ["worker"] and discovery["type"] == "A"
    worker = stack["worker"]
    assert str(discovery["port"]) == worker["environment"]["NOTION_SYNC_METRICS_PORT"]
    assert str(discovery["port"]) in worker["expose"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in stack["prometheus"]["command"]


def dockerfile() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split()[0].upper(), line.partition(" ")[2]) for line in lines]


def test_dockerfile_is_multi_stage_non_root_and_runs_the_worker() -> None:
    steps = dockerfile()
    stages = [args for op, args in steps if op == "FROM"]
    assert len(stages) == 2 and all(":" in s for s in stages)
    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    user = [args for op, args in final if op == "USER"]
    assert user and not user[-1].startswith(("root", "0"))
    assert [args for op, args in final if op == "CMD"] == ['["python", "worker.py"]']
    env = " ".join(args for op, args in final if op == "ENV")
    assert "NOTION_TOKEN" not in env.replace("NOTION_TOKEN_FILE", "")
    assert not [args for op, args in steps if op == "ARG" and "TOKEN" in args]
    exposed = {int(p) for op, args in final if op == "EXPOSE" for p in args.split()}
    assert exposed == {
        Settings.model_validate(_env(env)).health_port,
        Settings.model_validate(_env(env)).metrics_port,
    }
    healthcheck = " ".join(args for op, args in final if op == "HEALTHCHECK")
    assert "/healthz" in healthcheck
    # Everything the build copies exists and is not excluded by .dockerignore.
    ignored = (REPO / ".dockerignore").read_text().split()
    for op, args in steps:
        if op == "COPY" and "--from" not in args:
            for source in [a for a in shlex.split(args) if not a.startswith("--")][:-1]:
                assert (REPO / source).exists(), source
                assert source not in ignored, source
    assert {".venv", ".git", "tests"} <= set(ignored)


def _env(line: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in shlex.split(line) if "=" in pair)
