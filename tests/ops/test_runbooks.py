"""The runbooks (docs/operations.md, troubleshooting.md, performance.md) against the code they describe:
every alert's runbook link lands on a heading, every setting they name is one the workers read, and
every `notion-sync` command and flag they show exists. Static: no server is started."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import typer.main
import yaml
from typer.core import TyperGroup

from notion_sync.cli import app
from notion_sync.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
RUNBOOKS = ("operations.md", "troubleshooting.md", "performance.md")
ALERT_RULES = REPO / "deploy" / "prometheus" / "alerts.yml"
# Where settings are read outside `Settings`: the packages and entry points of the worker and CLI.
SOURCES = ("notion_sync", "activities", "workflows", "worker.py", "starter.py")

_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`([^`]+)`")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_SETTING = re.compile(r"\bNOTION_SYNC_[A-Z0-9]+(?:_[A-Z0-9]+)*\b")
# A `notion-sync` invocation: the command where a shell line (or a code span) starts, after `--`
# (kubectl exec), `exec worker` (compose) or `&&`/`;`; as typed, or through ./notion-sync or the venv.
# Not a path ending in the name (helm/notion-sync), a task queue named so, or a quoted message.
_INVOCATION = re.compile(
    r"(?:^[ \t]*|[ \t]--[ \t]+|\bexec[ \t]+worker[ \t]+|(?:&&|;)[ \t]*)"
    r"(?:\./|\.venv/bin/)?notion-sync[ \t]+([a-z].*)$",
    re.MULTILINE,
)
# Where a shell command line ends: a pipe, a list, a comment, a substitution or the code span.
_COMMAND_END = re.compile(r"\||;|&&|\s#|\)|`")


def github_anchor(heading: str, seen: dict[str, int]) -> str:
    """The anchor GitHub gives a heading: lower case, inline-code marks and punctuation dropped (word
    characters, spaces and hyphens kept), spaces as hyphens, `-1`, `-2` for repeats."""
    text = unicodedata.normalize("NFC", heading.strip().lower())
    slug = "".join(c for c in text if c.isalnum() or c in " -_").replace(" ", "-")
    count = seen.get(slug, 0)
    seen[slug] = count + 1
    return slug if count == 0 else f"{slug}-{count}"


def prose_and_code(markdown: str) -> tuple[str, list[str]]:
    """The text outside fenced blocks, and the code: each fenced block and inline span."""
    blocks = [match.group(0) for match in _FENCE.finditer(markdown)]
    prose = _FENCE.sub("", markdown)
    return prose, blocks + _INLINE_CODE.findall(prose)


def anchors(markdown: str) -> set[str]:
    prose, _ = prose_and_code(markdown)
    seen: dict[str, int] = {}
    found = set()
    for line in prose.splitlines():
        heading = _HEADING.match(line)
        if heading:
            found.add(github_anchor(heading.group(2), seen))
    return found


def runbook(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def invocations(markdown: str) -> Iterator[tuple[str, list[str]]]:
    """Each `notion-sync ...` shown as code: the command line as words, and where it was seen."""
    _, code = prose_and_code(markdown)
    for snippet in code:
        for match in _INVOCATION.finditer(snippet):
            words = _COMMAND_END.split(match.group(1), maxsplit=1)[0].split()
            if words:
                yield match.group(0).strip(), words


def cli_surface() -> tuple[dict[str, set[str]], set[str]]:
    """The CLI as the runbooks may show it: each command (`export`, `schedule create`) with its option
    names, and the names of the command groups (`schedule`)."""
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    commands: dict[str, set[str]] = {}
    groups: set[str] = set()
    pending = [(name, command) for name, command in root.commands.items()]
    while pending:
        name, command = pending.pop()
        if isinstance(command, TyperGroup):
            groups.add(name)
            pending += [(f"{name} {sub}", subcommand) for sub, subcommand in command.commands.items()]
            continue
        options = {"--help"}
        for parameter in command.params:
            options.update(parameter.opts)
            options.update(parameter.secondary_opts)
        commands[name] = options
    return commands, groups


def test_the_anchor_rule_is_githubs() -> None:
    seen: dict[str, int] = {}
    assert github_anchor("Export failed", seen) == "export-failed"
    assert github_anchor("Logs, metrics and traces", seen) == "logs-metrics-and-traces"
    assert github_anchor("verify, log, diff, archive, gc, prune", seen) == "verify-log-diff-archive-gc-prune"
    assert github_anchor("restore (into Notion)", seen) == "restore-into-notion"
    assert github_anchor("Export failed", seen) == "export-failed-1"
    # A `# comment` inside a shell block is no heading.
    assert anchors("# Title\n```sh\n# not a heading\n```\n## Sub `code`\n") == {"title", "sub-code"}


def test_every_alert_runbook_url_lands_on_a_heading_of_troubleshooting() -> None:
    rules = yaml.safe_load(ALERT_RULES.read_text(encoding="utf-8"))
    urls = {
        rule["alert"]: rule["annotations"]["runbook_url"]
        for group in rules["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert len(urls) >= 8, urls
    headings = anchors(runbook("troubleshooting.md"))
    missing = {}
    for alert, url in urls.items():
        path, _, anchor = url.partition("#")
        if path != "docs/troubleshooting.md" or anchor not in headings:
            missing[alert] = url
    assert not missing, f"runbook_url without a heading in docs/troubleshooting.md: {missing}"


def test_every_link_between_the_runbooks_lands_on_a_heading() -> None:
    broken = []
    for name in RUNBOOKS:
        prose, _ = prose_and_code(runbook(name))
        for target in _LINK.findall(prose):
            if "://" in target:
                continue
            path, _, anchor = target.partition("#")
            linked = DOCS / path if path else DOCS / name
            if not linked.is_file():
                broken.append(f"{name}: {target} (no such file)")
            elif anchor and anchor not in anchors(linked.read_text(encoding="utf-8")):
                broken.append(f"{name}: {target} (no such heading)")
    assert not broken, broken


def _settings_read_elsewhere() -> set[str]:
    """NOTION_SYNC_* names the code reads straight from the environment, outside `Settings`."""
    names: set[str] = set()
    for source in SOURCES:
        root = REPO / source
        for path in [root] if root.is_file() else root.rglob("*.py"):
            for line in path.read_text(encoding="utf-8").splitlines():
                if "environ" in line or "getenv" in line:
                    names.update(_SETTING.findall(line))
    return names


def test_every_setting_the_runbooks_name_is_read_by_the_workers() -> None:
    aliases = {field.alias for field in Settings.model_fields.values() if field.alias}
    known = aliases | _settings_read_elsewhere()
    named = {name: doc for doc in RUNBOOKS for name in _SETTING.findall(runbook(doc))}
    assert len(named) >= 15, named  # the runbooks do name the settings
    unknown = {name: doc for name, doc in named.items() if name not in known}
    assert not unknown, f"settings named in docs/ that no code reads: {unknown}"


def test_every_notion_sync_command_and_flag_in_the_runbooks_exists() -> None:
    commands, groups = cli_surface()
    assert {"export", "gc", "prune", "restore", "restore-files", "schedule create"} <= set(commands)
    problems = []
    seen = 0
    for doc in RUNBOOKS:
        for line, words in invocations(runbook(doc)):
            seen += 1
            name, rest = words[0], words[1:]
            if name in groups and rest:
                name, rest = f"{name} {rest[0]}", rest[1:]
            options = commands.get(name)
            if options is None:
                problems.append(f"{doc}: no command {name!r} (`{line}`)")
                continue
            for word in rest:
                flag = word.strip("[],.").split("=")[0]
                if flag.startswith("--") and flag not in options:
                    problems.append(f"{doc}: `notion-sync {name}` has no {flag} (`{line}`)")
    assert seen >= 30, seen  # the runbooks do show commands
    assert not problems, "\n".join(problems)


def test_the_checks_catch_an_unknown_command_flag_and_setting() -> None:
    """The extraction sees what a wrong runbook would say."""
    sample = "Run `notion-sync exprt --out X`, then\n```sh\nnotion-sync gc DEST --force  # comment --x\n```\n"
    found = sorted(words for _, words in invocations(sample))
    assert found == [["exprt", "--out", "X"], ["gc", "DEST", "--force"]]
    commands, groups = cli_surface()
    assert "--force" not in commands["gc"] and "--dry-run" in commands["gc"]
    assert "exprt" not in commands and "schedule" in groups and "schedule" not in commands
    assert _SETTING.findall("`NOTION_SYNC_NO_SUCH_THING` and NOTION_SYNC_RATE.") == [
        "NOTION_SYNC_NO_SUCH_THING",
        "NOTION_SYNC_RATE",
    ]
    assert "NOTION_SYNC_NO_SUCH_THING" not in _settings_read_elsewhere()
    # Paths and queues of that name, and messages quoting it, are not invocations; `kubectl exec` is.
    assert list(invocations("`helm upgrade backup ./helm/notion-sync --reuse-values`")) == []
    assert list(invocations("`temporal task-queue describe --task-queue notion-sync`")) == []
    assert list(invocations("`... a symbolic link: notion-sync never writes`")) == []
    kubectl = "`kubectl exec deploy/x -- notion-sync status --out /d`"
    assert [words for _, words in invocations(kubectl)] == [["status", "--out", "/d"]]
