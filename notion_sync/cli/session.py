"""What every command that talks to Temporal shares: the console, the connection (or the embedded dev
server and worker), and how a command's errors end it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any, NoReturn

from pydantic import SecretStr
from rich.console import Console
from temporalio.client import Client
from temporalio.service import RPCError

from notion_sync.control import ExportAlreadyRunning, connect
from notion_sync.devserver import EmbeddedServer
from notion_sync.emulator.process import EmulatorProcess
from notion_sync.exporter.context import open_gateway
from notion_sync.notion.errors import NotionUnauthorized
from notion_sync.observability import configure_logging
from notion_sync.settings import Settings
from notion_sync.workers import run_worker
from notion_sync.workspaces import (
    CredentialsError,
    WorkspaceCredential,
    identity_of,
    implicit_name,
    load_credentials,
    settings_for,
)

console = Console(stderr=True, soft_wrap=True)
DEMO_PAGES = 200


@dataclass
class Session:
    """A Temporal client, plus the dev server and worker this process runs when embedded."""

    client: Client
    settings: Settings
    server: EmbeddedServer | None
    worker: asyncio.Task[None] | None
    # The workspace an export started here belongs to (by name; its credential stays in the worker).
    workspace: str


def fail(message: str, code: int = 1) -> NoReturn:
    console.print(f"[red]error:[/red] {message}")
    raise SystemExit(code)


DETACHED = "Detached. The export goes on where Temporal runs; run the same command to attach."


def run(coro: Coroutine[Any, Any, int | None], detached: str = DETACHED) -> int:
    """Runs a command's coroutine to its exit code; the errors a user can act on end it with a message,
    and Ctrl-C with `detached` (what goes on, and how to find it again)."""
    try:
        return asyncio.run(coro) or 0
    except KeyboardInterrupt:
        console.print(detached)
        return 130
    # RuntimeError covers DevServerError and ScheduleError.
    except (ExportAlreadyRunning, CredentialsError, NotionUnauthorized, RuntimeError) as error:
        fail(str(error))
    except RPCError as error:
        fail(f"Temporal refused the request: {error}")


@contextlib.asynccontextmanager
async def open_session(
    settings: Settings, embedded_worker: bool, workspace: str | None = None
) -> AsyncIterator[Session]:
    """Connects to TEMPORAL_ADDRESS, or runs the embedded dev server (and a worker) when unset."""
    server: EmbeddedServer | None = None
    demo: EmulatorProcess | None = None
    worker_task: asyncio.Task[None] | None = None
    name = workspace or settings.workspace
    try:
        if settings.temporal_address is None:
            server = await asyncio.to_thread(
                EmbeddedServer.acquire,
                settings.state_dir,
                port=settings.dev_server_port,
                ui_port=settings.dev_server_ui_port,
            )
            if server.note:
                console.print(server.note)
            client = await connect(settings, server.address)
        else:
            client = await connect(settings)
        if embedded_worker and settings.temporal_address is None:
            configure_logging(settings.state_dir / "worker.log")
            credentials = load_credentials(settings)
            if not credentials and workspace is None:
                demo, settings = _start_demo(settings)
                credentials = load_credentials(settings)
            name, credential = await _embedded_workspace(settings, credentials, workspace)
            worker_task = asyncio.create_task(run_worker(settings, client, {name: credential}))
        yield Session(client=client, settings=settings, server=server, worker=worker_task, workspace=name)
    finally:
        if worker_task is not None:
            worker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await worker_task
        if demo is not None:
            demo.stop()
        if server is not None:
            server.release()


async def _embedded_workspace(
    settings: Settings, credentials: dict[str, WorkspaceCredential], requested: str | None
) -> tuple[str, WorkspaceCredential]:
    """The workspace this command's own worker serves, and the name its export runs under.

    A named one comes from the credentials. The unnamed one of NOTION_TOKEN is named after what Notion
    says the token is (`<workspace>-<bot id>`): two commands with two tokens, sharing one embedded
    server, then never share an activity queue, and a command restarted with the same token finds
    its export's queue again.
    """
    if requested is not None:
        if requested not in credentials:
            known = ", ".join(sorted(credentials)) or "none"
            raise CredentialsError(f"no credential for workspace {requested!r} here (known: {known})")
        return requested, credentials[requested]
    if settings.notion_token is not None:
        credential = credentials[settings.workspace]
    elif len(credentials) == 1:
        credential = next(iter(credentials.values()))
    else:
        raise CredentialsError(f"choose a workspace with --workspace: {', '.join(sorted(credentials))}")
    async with open_gateway(settings_for(settings, credential)) as (gateway, _):
        identity = identity_of(await gateway.me())
    name = implicit_name(identity)
    return name, credential.model_copy(update={"name": name})


def _start_demo(settings: Settings) -> tuple[EmulatorProcess, Settings]:
    """No token: serve the bundled demo workspace from the emulator, on loopback."""
    token = secrets.token_urlsafe(24)
    process = EmulatorProcess(pages=DEMO_PAGES, seed=7, token=token, track_ids=False)
    process.start()
    console.print(
        f"No NOTION_TOKEN set: exporting the demo workspace ({DEMO_PAGES} pages) from the emulator."
    )
    changes: dict[str, object] = {"notion_token": SecretStr(token), "notion_base_url": process.base_url}
    if "NOTION_SYNC_RATE" not in os.environ:
        changes["requests_per_second"] = 0.0
    return process, settings.model_copy(update=changes)
