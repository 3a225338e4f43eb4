"""Where workers find workspace credentials: the environment, a YAML file, a folder of mounted secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from notion_sync.models import WorkspaceIdentity
from notion_sync.settings import NOTION_API_URL, Settings
from notion_sync.workspaces import CredentialsError, implicit_name, load_credentials, settings_for


def _settings(**fields: object) -> Settings:
    base = {
        **Settings().model_dump(),
        "notion_token": None,
        "credentials_file": None,
        "credentials_dir": None,
    }
    return Settings.model_construct(**{**base, **fields})


def test_the_environment_token_is_the_default_workspace() -> None:
    held = load_credentials(_settings(notion_token=SecretStr("ntn_env"), workspace="main"))
    assert list(held) == ["main"]
    assert held["main"].token.get_secret_value() == "ntn_env"
    assert held["main"].base_url == NOTION_API_URL


def test_a_file_and_a_secrets_folder_add_workspaces(tmp_path: Path) -> None:
    (tmp_path / "beta.token").write_text("ntn_beta_from_file\n")
    listing = tmp_path / "workspaces.yaml"
    listing.write_text(
        "workspaces:\n"
        "  alpha: {token: ntn_alpha, base_url: 'http://127.0.0.1:1'}\n"
        f"  beta: {{token_file: '{tmp_path / 'beta.token'}'}}\n"
    )
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "gamma").write_text("ntn_gamma\n")
    (secrets / "gamma.base_url").write_text("http://127.0.0.1:2\n")
    (secrets / "..data").mkdir()  # what a Kubernetes Secret mount looks like beside its keys
    (secrets / ".hidden").write_text("not a workspace")
    held = load_credentials(_settings(credentials_file=listing, credentials_dir=secrets))
    assert sorted(held) == ["alpha", "beta", "gamma"]
    assert held["beta"].token.get_secret_value() == "ntn_beta_from_file"
    assert held["gamma"].base_url == "http://127.0.0.1:2"
    scoped = settings_for(_settings(credentials_dir=secrets), held["gamma"])
    assert scoped.token() == "ntn_gamma" and scoped.notion_base_url == "http://127.0.0.1:2"


@pytest.mark.parametrize(
    "text",
    [
        "workspaces: [a, b]\n",
        "workspaces:\n  alpha: {base_url: 'http://x'}\n",
        "workspaces:\n  Not Valid: {token: ntn_secret_value}\n",
        ": not yaml: [\n",
    ],
)
def test_a_malformed_file_is_a_clear_error_without_the_token(tmp_path: Path, text: str) -> None:
    listing = tmp_path / "workspaces.yaml"
    listing.write_text(text)
    with pytest.raises(CredentialsError) as error:
        load_credentials(_settings(credentials_file=listing))
    assert str(listing) in str(error.value) or "workspace name" in str(error.value)
    assert "ntn_secret_value" not in str(error.value)


def test_a_name_defined_twice_is_refused(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "default").write_text("ntn_other")
    with pytest.raises(CredentialsError, match="defined twice"):
        load_credentials(_settings(notion_token=SecretStr("ntn_env"), credentials_dir=secrets))


def test_an_unnamed_token_is_named_after_its_identity() -> None:
    identity = WorkspaceIdentity(
        bot_id="16D84278-ab0e-484c-9bdd-b35da3bd8905", workspace_name="Acme Corp — Paris", workspace_id="w1"
    )
    assert implicit_name(identity) == "acme-corp-paris-16d84278"
    assert implicit_name(WorkspaceIdentity(bot_id="b")) == "notion-b"


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        (
            {"NOTION_SYNC_BUILD_ID": "b2"},
            "worker versioning needs both NOTION_SYNC_DEPLOYMENT_NAME and NOTION_SYNC_BUILD_ID",
        ),
        ({"NOTION_TOKEN_FILE": "/nonexistent/token"}, "NOTION_TOKEN_FILE cannot be read"),
    ],
)
@pytest.mark.parametrize("command", [["-m", "notion_sync", "worker"], ["worker.py"]])
def test_bad_settings_end_in_an_error_line_not_a_traceback(
    variables: dict[str, str], expected: str, command: list[str]
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTION_", "TEMPORAL_"))} | variables
    done = subprocess.run(
        [sys.executable, *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 2, done.stderr
    assert f"error: settings: {expected}" in done.stderr and "Traceback" not in done.stderr
