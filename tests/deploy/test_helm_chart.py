"""The chart rendered by Helm's own template engine (helm-python-sdk: Helm v4's Go SDK through ctypes,
no helm binary) and every manifest checked against the Kubernetes OpenAPI schemas (kubernetes-validate).
Not checked here: admission by a real API server, image pulls, the pods actually starting."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from notion_sync.settings import Settings

helm = pytest.importorskip("helm_python")

CHART = Path(__file__).resolve().parents[2] / "helm" / "notion-sync"
KUBE_VERSION = "1.31"
# Custom resources: no Kubernetes schema to check them against (their content is checked by tests).
CUSTOM_KINDS = {"PrometheusRule"}


def render(values: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """kind -> manifest, each validated strictly against the Kubernetes schema."""
    with helm.Chart.load(str(CHART)) as chart:
        files = chart.render(values or {}, name="backup", namespace="notion", is_install=True)
    manifests: dict[str, dict[str, Any]] = {}
    for name, text in files.items():
        if not name.endswith(".yaml"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                if doc["kind"] not in CUSTOM_KINDS:
                    kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
                manifests[doc["kind"]] = doc
    return manifests


def test_lint_is_clean() -> None:
    result = helm.lint(str(CHART), strict=True)
    assert result["errors"] == []
    assert all(m["severity"] <= 1 for m in result["messages"]), result["messages"]  # INFO at most


def test_default_render() -> None:
    manifests = render()
    assert set(manifests) == {"ConfigMap", "Deployment", "Service", "ServiceAccount", "PodDisruptionBudget"}
    deployment = manifests["Deployment"]
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 9464, "health": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["serviceAccountName"] == manifests["ServiceAccount"]["metadata"]["name"]
    # The token is a file from a Secret the chart only references; it is nowhere in the environment.
    token_volume = next(v for v in pod["volumes"] if v["name"] == "notion-token")
    assert token_volume["secret"]["secretName"] == "notion-sync-token"
    assert "env" not in container
    config = manifests["ConfigMap"]["data"]
    assert config["NOTION_TOKEN_FILE"].startswith(
        next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "notion-token")
    )
    assert config["NOTION_SYNC_HEALTH_PORT"] == "8080" and config["NOTION_SYNC_METRICS_PORT"] == "9464"
    # The total Notion budget (3/s) is split across the pods, which share no budget file.
    assert config["NOTION_SYNC_RATE"] == "1.5"
    service = manifests["Service"]
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert manifests["PodDisruptionBudget"]["spec"]["selector"] == deployment["spec"]["selector"]


def test_prometheus_rule_holds_the_alert_rules() -> None:
    values = {"prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus"}}}
    rule = render(values)["PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus"
    rules_file = CHART.parents[1] / "deploy" / "prometheus" / "alerts.yml"
    assert rule["spec"] == yaml.safe_load(rules_file.read_text())
    alerts = {r.get("alert") for group in rule["spec"]["groups"] for r in group["rules"]}
    assert "ExportFailed" in alerts


def test_every_setting_in_the_config_map_is_one_the_worker_reads() -> None:
    known = {field.alias for field in Settings.model_fields.values()}
    known |= {"AWS_ENDPOINT_URL", "AWS_REGION", "OTEL_SERVICE_NAME"}  # read by boto3 / OpenTelemetry
    values = {"tracing": {"exporter": "otlp", "otlpEndpoint": "http://otel:4318"}}
    values["s3"] = {"endpointUrl": "http://minio:9000", "region": "eu-west-1", "credentialsSecret": "s3"}
    config = render(values)["ConfigMap"]["data"]
    assert set(config) <= known, set(config) - known
    settings = Settings.model_validate({k: v for k, v in config.items() if k != "NOTION_TOKEN_FILE"})
    assert settings.traces == "otlp" and settings.metrics_port == 9464


def test_autoscaling_claim_and_s3_credentials() -> None:
    manifests = render(
        {
            "autoscaling": {"enabled": True, "maxReplicas": 6},
            "destination": {"existingClaim": "backups"},
            "s3": {"credentialsSecret": "notion-sync-s3"},
            "podDisruptionBudget": {"enabled": False},
        }
    )
    assert "PodDisruptionBudget" not in manifests
    hpa = manifests["HorizontalPodAutoscaler"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == manifests["Deployment"]["metadata"]["name"]
    assert "replicas" not in manifests["Deployment"]["spec"]  # the HPA owns it
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    assert {"persistentVolumeClaim": {"claimName": "backups"}, "name": "destination"} in pod["volumes"]
    assert {"secretRef": {"name": "notion-sync-s3"}} in pod["containers"][0]["envFrom"]
    assert manifests["ConfigMap"]["data"]["NOTION_SYNC_RATE"] == "0.5"  # 3/s over at most 6 pods


# Kubernetes' own pod and chart fields, copied into the manifests as they are: their documentation is
# Kubernetes'. Any other top-level value needs a comment of its own.
KUBERNETES_FIELDS = {
    "imagePullSecrets",
    "resources",
    "serviceAccount",
    "podAnnotations",
    "nodeSelector",
    "tolerations",
    "affinity",
}


def undocumented_keys(text: str) -> list[str]:
    """Top-level keys of a values file with no comment above them, on their line or inside their block.

    A comment at the left margin belongs to the key below it, an indented one to the block it is in."""
    lines = text.splitlines()
    undocumented = []
    for number, line in enumerate(lines):
        if not line or line[0] in " #":
            continue
        key = line.split(":", 1)[0]
        above = number > 0 and lines[number - 1].startswith("#")
        block = itertools.takewhile(lambda later: not later or later[0] == " ", lines[number + 1 :])
        inside = any(later.lstrip().startswith("#") for later in block)
        if not (above or " #" in line or inside or key in KUBERNETES_FIELDS):
            undocumented.append(key)
    return undocumented


def test_every_value_is_documented() -> None:
    text = (CHART / "values.yaml").read_text()
    assert "temporalio/helm-charts" in text, "the file says where the Temporal cluster comes from"
    keys = yaml.safe_load(text)
    assert set(keys) >= KUBERNETES_FIELDS, KUBERNETES_FIELDS - set(keys)
    assert undocumented_keys(text) == []


def test_an_undocumented_value_is_named() -> None:
    text = "# a comment\ndocumented: 1\nbare: 2\ninline: 3  # says so\nblock:\n  # inside\n  leaf: 4\n"
    text += "other:\n  leaf: 5\n# about the next key, not the block above\nnext: 6\n"
    assert undocumented_keys(text) == ["bare", "other"]


def test_more_workspaces_come_from_a_mounted_secret() -> None:
    plain = render()
    assert "NOTION_SYNC_CREDENTIALS_DIR" not in plain["ConfigMap"]["data"]
    manifests = render({"notion": {"credentialsSecret": "notion-workspaces", "workspace": "acme"}})
    config = manifests["ConfigMap"]["data"]
    assert config["NOTION_SYNC_WORKSPACE"] == "acme"
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "notion-workspaces")
    assert volume["secret"]["secretName"] == "notion-workspaces"
    (container,) = pod["containers"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "notion-workspaces")
    assert mount["mountPath"] == config["NOTION_SYNC_CREDENTIALS_DIR"] and mount["readOnly"] is True
    assert not any("acme" in str(e) for e in container.get("env", []))
