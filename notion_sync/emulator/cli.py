"""`notion-sync emulator ...`: run the Notion API emulator until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import gc
import signal
from pathlib import Path
from typing import Annotated

import typer
from aiohttp import web

from notion_sync.emulator.replay import ReplayBackend
from notion_sync.emulator.server import DEFAULT_TOKEN, EmulatorConfig, EmulatorServer

Probability = Annotated[float, typer.Option(min=0.0, max=1.0, help="fault probability per /v1 request")]


async def serve(server: EmulatorServer, port: int) -> None:
    """Bind 127.0.0.1, print the base URL as the first stdout line, run until a signal."""
    # The workspace and the imports live as long as the process: keep them out of collections.
    # Requests allocate heavily and mostly free by refcount: collect the young generation rarely.
    gc.freeze()
    gc.set_threshold(20_000)
    runner = web.AppRunner(server.app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    server.set_base_url(base_url)
    print(f"Notion API emulator listening on {base_url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def build_server(
    *,
    pages: int,
    seed: int,
    token: str,
    shape: str | None,
    replay: Path | None,
    track_ids: bool,
    workspace_name: str | None = None,
) -> EmulatorServer:
    if replay is not None:
        return EmulatorServer(replay=ReplayBackend(replay), token=token, track_ids=track_ids, seed=seed)
    from notion_sync.emulator.shape import WorkspaceShape  # the generator is not needed to replay
    from notion_sync.emulator.workspace import Workspace

    workspace_shape = WorkspaceShape.model_validate_json(shape) if shape else WorkspaceShape()
    if workspace_name is not None:  # the flag wins over the shape's knob
        workspace_shape = workspace_shape.model_copy(update={"workspace_name": workspace_name})
    workspace = Workspace(seed, pages, workspace_shape)
    return EmulatorServer(workspace, token=token, track_ids=track_ids, seed=seed)


def emulator(
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1; 0 picks a free one")] = 0,
    pages: Annotated[int, typer.Option(help="pages in the generated workspace (rows count)")] = 1000,
    seed: Annotated[int, typer.Option(help="generator seed: same seed, same workspace")] = 7,
    token: Annotated[str, typer.Option(help="the only bearer token accepted")] = DEFAULT_TOKEN,
    shape: Annotated[str | None, typer.Option(help="WorkspaceShape knobs as JSON")] = None,
    workspace_name: Annotated[
        str | None,
        typer.Option(help='bot.workspace_name of /v1/users/me; default "Emulated Workspace"'),
    ] = None,
    rate: Annotated[float | None, typer.Option(help="requests/s (token bucket); default unlimited")] = None,
    burst: Annotated[int | None, typer.Option(help="token bucket size; default ceil(rate)")] = None,
    latency_ms: Annotated[float, typer.Option(help="fixed latency per /v1 request")] = 0.0,
    jitter_ms: Annotated[float, typer.Option(help="extra uniform random latency, 0..jitter")] = 0.0,
    fault_500: Probability = 0.0,
    fault_502: Probability = 0.0,
    fault_503: Probability = 0.0,
    fault_504: Probability = 0.0,
    fault_529: Probability = 0.0,
    fault_slow: Probability = 0.0,
    fault_reset: Probability = 0.0,
    fault_truncate: Probability = 0.0,
    slow_seconds: Annotated[float, typer.Option(help="how long a slow fault sleeps")] = 30.0,
    fault_seed: Annotated[int, typer.Option(help="seed of the fault RNG")] = 0,
    file_expiry: Annotated[int | None, typer.Option(help="signed file URL lifetime, seconds")] = None,
    replay: Annotated[Path | None, typer.Option(help="serve recorded vcrpy cassettes instead")] = None,
    track_ids: Annotated[bool, typer.Option(help="count fetches per page / block id in stats")] = False,
) -> None:
    """Run the Notion API emulator (API 2025-09-03) on 127.0.0.1."""
    config = EmulatorConfig(
        latency_ms=latency_ms,
        jitter_ms=jitter_ms,
        rate=rate,
        burst=burst,
        fault_500=fault_500,
        fault_502=fault_502,
        fault_503=fault_503,
        fault_504=fault_504,
        fault_529=fault_529,
        fault_slow=fault_slow,
        fault_reset=fault_reset,
        fault_truncate=fault_truncate,
        slow_seconds=slow_seconds,
        fault_seed=fault_seed,
        file_expiry=file_expiry,
    )
    server = build_server(
        pages=pages,
        seed=seed,
        token=token,
        shape=shape,
        replay=replay,
        track_ids=track_ids,
        workspace_name=workspace_name,
    )
    try:
        server.configure(config)
    except ValueError as exc:  # e.g. fault probabilities summing past 1
        raise typer.BadParameter(str(exc)) from None
    asyncio.run(serve(server, port))


def main() -> None:
    """`python -m notion_sync.emulator`: the command on its own."""
    typer.run(emulator)
