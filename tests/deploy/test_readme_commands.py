"""The README's Deploy commands refer to what exists: files, services, chart values, names, paths."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.test_compose_and_image import COMPOSE, services
from tests.deploy.test_helm_chart import CHART, render

REPO = Path(__file__).resolve().parents[2]


def deploy_commands() -> list[list[str]]:
    section = (REPO / "README.md").read_text().split("## Deploy", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    text = "\n".join(blocks).replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        for part in re.split(r" && ", line.split("  #")[0]):
            if part.strip():
                commands.append(shlex.split(part))
    return commands


def test_compose_commands() -> None:
    compose = [c for c in deploy_commands() if c[:2] == ["docker", "compose"]]
    assert compose
    stack = services()
    for command in compose:
        assert command[2:4] == ["-f", COMPOSE.name]
        if "exec" in command:
            service = command[command.index("exec") + 1]
            assert service in stack
            out = command[command.index("--out") + 1] if "--out" in command else command[-1]
            mounts = [v.split(":")[1] for v in stack[service]["volumes"]]
            assert any(out.startswith(m + "/") for m in mounts), out
        if "--scale" in command:
            assert command[command.index("--scale") + 1].split("=")[0] in stack
            assert "container_name" not in stack["worker"]  # required for --scale


def test_helm_commands() -> None:
    commands = deploy_commands()
    (install,) = [c for c in commands if c[:2] == ["helm", "install"]]
    release, chart = install[2], install[3]
    assert (REPO / chart) == CHART
    values: dict[str, Any] = {}
    for i, word in enumerate(install):
        if word == "--set":
            key, _, value = install[i + 1].partition("=")
            _set(values, key.split("."), value)
    documented = yaml.safe_load((CHART / "values.yaml").read_text())
    _check_keys(values, documented)
    manifests = render(values)
    deployment = manifests["Deployment"]["metadata"]["name"]
    assert release == "backup" and deployment == "backup-notion-sync"
    for command in commands:
        if command[0] == "kubectl":
            for word in command:
                if word.startswith("deploy/"):
                    assert word == f"deploy/{deployment}"
            if "secret" in command:
                secret = documented["notion"]["tokenSecret"]
                assert secret["name"] in command
                assert any(w.startswith(f"--from-literal={secret['key']}=") for w in command)
            if "--out" in command:
                assert command[command.index("--out") + 1].startswith(documented["destination"]["mountPath"])


def _set(values: dict[str, Any], path: list[str], value: str) -> None:
    for key in path[:-1]:
        values = values.setdefault(key, {})
    values[path[-1]] = value


def _check_keys(values: dict[str, Any], documented: dict[str, Any]) -> None:
    for key, value in values.items():
        assert key in documented, key
        if isinstance(value, dict):
            _check_keys(value, documented[key])
