"""s3:// destinations: parsing, workflow ids, the CLI's validation (no server needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from notion_sync.control import export_workflow_id, normalise_destination
from notion_sync.settings import Settings
from notion_sync.storage.destination import open_destination
from notion_sync.storage.s3 import S3Location, S3UrlError, mirror_path, parse_s3_url


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://backups", "backups", ""),
        ("s3://backups/", "backups", ""),
        ("s3://backups/team/notion", "backups", "team/notion"),
        ("s3://backups//team/notion/", "backups", "team/notion"),
        (Path("s3://backups/team"), "backups", "team"),  # what a Path option makes of it: s3:/backups/team
    ],
)
def test_urls_parse(url: str | Path, bucket: str, prefix: str) -> None:
    assert parse_s3_url(url) == S3Location(bucket=bucket, prefix=prefix)


@pytest.mark.parametrize("url", ["s3://", "s3://B", "s3://ab", "s3://my_bucket/x", "s3://bucket/a/../b"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(S3UrlError):
        parse_s3_url(url)


def test_one_workflow_id_per_s3_destination(tmp_path: Path) -> None:
    assert normalise_destination(Path("s3://bucket/a/")) == "s3://bucket/a"
    assert export_workflow_id("s3://bucket/a") == export_workflow_id(Path("s3://bucket/a/"))
    assert export_workflow_id("s3://bucket/a") != export_workflow_id("s3://bucket/b")


def test_an_s3_destination_is_assembled_in_a_mirror_under_the_state_folder(tmp_path: Path) -> None:
    settings = Settings.model_construct(**{**Settings().model_dump(), "state_dir": tmp_path})
    local = open_destination("s3://bucket/a", settings)
    assert local.root == mirror_path(parse_s3_url("s3://bucket/a"), settings).resolve()
    assert local.root.is_relative_to(tmp_path / "s3" / "bucket")
    assert open_destination("s3://bucket/b", settings).root != local.root


def test_cli_refuses_a_malformed_s3_url_without_touching_the_disk(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "notion_sync", "export", "--out", "s3://Bad_Bucket/x"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "s3://Bad_Bucket/x" in done.stderr and "BUCKET/PREFIX" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []
