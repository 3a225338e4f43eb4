"""The house's walls, read from the source with `ast`: domain code knows nothing of typer or the CLI,
the package never reaches up to the top-level entry points, and no module grows past 700 lines."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOMAIN = ("notion_sync", "activities", "workflows")
MAX_LINES = 700


def _modules(*roots: str) -> Iterator[tuple[str, Path]]:
    """(dotted module name, file) of every .py file under the roots."""
    for root in roots:
        for path in sorted((REPO / root).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def _imported(module: str, path: Path) -> set[str]:
    """Every module the file imports, anywhere in it (functions and TYPE_CHECKING blocks too).

    `from a import b` counts as importing both `a` and `a.b`, as b may be a submodule."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _within(name: str, target: str) -> bool:
    return name == target or name.startswith(target + ".")


def _offenders(roots: tuple[str, ...], target: str, allowed: tuple[str, ...] = ()) -> list[str]:
    return [
        f"{module} imports {name}"
        for module, path in _modules(*roots)
        if not any(_within(module, a) for a in allowed)
        for name in sorted(_imported(module, path))
        if _within(name, target)
    ]


def test_the_import_reader_sees_every_form_of_import(tmp_path: Path) -> None:
    source = tmp_path / "pkg" / "sub" / "mod.py"
    source.parent.mkdir(parents=True)
    source.write_text(
        "import typer.testing\n"
        "from .. import cli\n"
        "from .sibling import thing\n"
        "def later() -> None:\n"
        "    from worker import main\n"
    )
    found = _imported("pkg.sub.mod", source)
    assert {"typer.testing", "pkg.cli", "pkg.sub.sibling", "worker"} <= found
    assert _within("typer.testing", "typer") and not _within("typerx", "typer")


def test_only_the_command_line_imports_typer() -> None:
    allowed = ("notion_sync.cli", "notion_sync.emulator.cli")
    offenders = _offenders(DOMAIN, "typer", allowed)
    assert not offenders, "\n".join(offenders)


def test_domain_code_never_imports_the_cli() -> None:
    allowed = ("notion_sync.cli", "notion_sync.__main__")
    offenders = _offenders(DOMAIN, "notion_sync.cli", allowed)
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("entry_point", ["worker", "starter"])
def test_the_package_never_imports_an_entry_point(entry_point: str) -> None:
    assert (REPO / f"{entry_point}.py").is_file()
    offenders = _offenders((*DOMAIN, "bench"), entry_point)
    assert not offenders, "\n".join(offenders)


def test_no_module_is_over_700_lines() -> None:
    long = {
        str(path.relative_to(REPO)): lines
        for _, path in _modules(*DOMAIN)
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}, f"split these modules: {long}"
