"""Workspaces: names bound to credentials (token + base URL), held only by workers.

A workflow knows a workspace by its name alone. Its activities run on that workspace's own task
queue, which only workers holding the credential poll, so one workspace's work never runs with
another's token or reaches another's base URL.

Where credentials come from (a worker may hold several; names must not repeat):
- `NOTION_TOKEN` (or `NOTION_TOKEN_FILE`) with `NOTION_BASE_URL`, named `NOTION_SYNC_WORKSPACE`
  ("default" unless set);
- `NOTION_SYNC_CREDENTIALS_FILE`, YAML: `workspaces: {NAME: {token: ..., base_url: ...}}` (or
  `token_file:` instead of `token:`);
- `NOTION_SYNC_CREDENTIALS_DIR`, a folder of mounted secrets (a Kubernetes Secret, compose secrets):
  each file `NAME` holds a token, an optional `NAME.base_url` its base URL.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr, ValidationError

from notion_sync.models import WorkspaceIdentity
from notion_sync.settings import NOTION_API_URL, Settings

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_BASE_URL_SUFFIX = ".base_url"


class CredentialsError(ValueError):
    """A credentials source is malformed; the message names it, never a token."""


class WorkspaceCredential(BaseModel):
    name: str
    token: SecretStr
    base_url: str = NOTION_API_URL


class _FileEntry(BaseModel):
    token: SecretStr | None = None
    token_file: Path | None = None
    base_url: str = NOTION_API_URL


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise CredentialsError(
            f"workspace name {name!r} is not valid: use 1-63 lowercase letters, digits, '.', '_' or '-'"
        )
    return name


def activity_queue(task_queue: str, workspace: str) -> str:
    """The task queue of one workspace's activities, beside the workflows' queue."""
    return f"{task_queue}/{workspace}"


def load_credentials(settings: Settings) -> dict[str, WorkspaceCredential]:
    """Every workspace this process holds a credential for, by name."""
    found: dict[str, WorkspaceCredential] = {}

    def add(credential: WorkspaceCredential, source: str) -> None:
        check_name(credential.name)
        if credential.name in found:
            raise CredentialsError(f"workspace {credential.name!r} is defined twice ({source})")
        found[credential.name] = credential

    if settings.notion_token is not None:
        add(
            WorkspaceCredential(
                name=settings.workspace, token=settings.notion_token, base_url=settings.notion_base_url
            ),
            "NOTION_TOKEN",
        )
    if settings.credentials_file is not None:
        for credential in _from_file(settings.credentials_file):
            add(credential, str(settings.credentials_file))
    if settings.credentials_dir is not None:
        for credential in _from_dir(settings.credentials_dir):
            add(credential, str(settings.credentials_dir))
    return found


def settings_for(settings: Settings, credential: WorkspaceCredential) -> Settings:
    """The settings an activity of this workspace runs with: its token and base URL only."""
    return settings.model_copy(
        update={
            "notion_token": credential.token,
            "notion_base_url": credential.base_url,
            "workspace": credential.name,
        }
    )


def _from_file(path: Path) -> list[WorkspaceCredential]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise CredentialsError(f"cannot read credentials file {path}: {type(error).__name__}") from None
    workspaces = data.get("workspaces") if isinstance(data, dict) else None
    if not isinstance(workspaces, dict):
        raise CredentialsError(f"{path}: expected a `workspaces:` mapping of names to credentials")
    credentials = []
    for name, raw in workspaces.items():
        try:
            entry = _FileEntry.model_validate(raw)
        except ValidationError:
            raise CredentialsError(f"{path}: workspace {name!r} needs `token` or `token_file`") from None
        token = entry.token
        if entry.token_file is not None:
            token = SecretStr(_read_secret(entry.token_file))
        if token is None or not token.get_secret_value():
            raise CredentialsError(f"{path}: workspace {name!r} has no token")
        credentials.append(WorkspaceCredential(name=str(name), token=token, base_url=entry.base_url))
    return credentials


def _from_dir(folder: Path) -> list[WorkspaceCredential]:
    if not folder.is_dir():
        raise CredentialsError(f"credentials folder {folder} does not exist")
    credentials = []
    # Kubernetes mounts a Secret's keys as symlinks beside hidden `..data` folders: skip dotfiles.
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.name.endswith(_BASE_URL_SUFFIX) or entry.is_dir():
            continue
        base_url_file = folder / f"{entry.name}{_BASE_URL_SUFFIX}"
        base_url = _read_secret(base_url_file) if base_url_file.exists() else NOTION_API_URL
        credentials.append(
            WorkspaceCredential(name=entry.name, token=SecretStr(_read_secret(entry)), base_url=base_url)
        )
    return credentials


def _read_secret(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as error:
        raise CredentialsError(f"cannot read {path}: {error.strerror}") from None


def identity_of(bot_user: dict[str, Any]) -> WorkspaceIdentity:
    """A `GET /v1/users/me` answer as the identity recorded with each snapshot."""
    bot = bot_user.get("bot") or {}
    return WorkspaceIdentity(
        bot_id=str(bot_user.get("id", "")),
        bot_name=bot_user.get("name"),
        workspace_id=bot.get("workspace_id"),
        workspace_name=bot.get("workspace_name"),
    )


def implicit_name(identity: WorkspaceIdentity) -> str:
    """A workspace name made from a credential's identity: `acme-corp-16d84278`."""
    slug = re.sub(r"[^a-z0-9]+", "-", (identity.workspace_name or identity.bot_name or "").lower())
    slug = slug.strip("-")[:40].strip("-") or "notion"
    bot = re.sub(r"[^a-z0-9]", "", identity.bot_id.lower())[:8] or "bot"
    return check_name(f"{slug}-{bot}")
