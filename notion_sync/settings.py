"""Settings read from flags and the environment (never from workflow inputs)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

NOTION_API_URL = "https://api.notion.com"
DEFAULT_TASK_QUEUE = "notion-sync"


class Settings(BaseSettings):
    """Everything a worker or the CLI needs to know about its environment."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    notion_token: SecretStr | None = Field(default=None, alias="NOTION_TOKEN")
    notion_base_url: str = Field(default=NOTION_API_URL, alias="NOTION_BASE_URL")
    temporal_address: str | None = Field(default=None, alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field(default="default", alias="TEMPORAL_NAMESPACE")
    task_queue: str = Field(default=DEFAULT_TASK_QUEUE, alias="NOTION_SYNC_TASK_QUEUE")
    dev_server_port: int = Field(default=7233, alias="NOTION_SYNC_DEV_SERVER_PORT")
    dev_server_ui_port: int = Field(default=8233, alias="NOTION_SYNC_DEV_SERVER_UI_PORT")
    state_dir: Path = Field(default=Path.home() / ".notion-sync", alias="NOTION_SYNC_STATE_DIR")
    # Notion allows an average of 3 requests/s per integration; 0 disables the budget.
    requests_per_second: float = Field(default=3.0, alias="NOTION_SYNC_RATE", ge=0)
    burst: int = Field(default=6, alias="NOTION_SYNC_BURST", ge=1)
    request_timeout_s: float = Field(default=30.0, alias="NOTION_SYNC_REQUEST_TIMEOUT", gt=0)
    page_concurrency: int = Field(default=8, alias="NOTION_SYNC_PAGE_CONCURRENCY", ge=1)
    # Caps on work a misbehaving server could make endless (README: "Caps and what a user sees when
    # they trip"). Tripping one records a problem for that object; the export goes on.
    # Requests one listing may take (a search, the children of a block, the rows of a data source...).
    max_listing_requests: int = Field(default=100_000, alias="NOTION_SYNC_MAX_LISTING_REQUESTS", ge=1)
    # Levels of nested blocks read below a page (Notion's own pages nest about 20 deep).
    max_block_depth: int = Field(default=64, alias="NOTION_SYNC_MAX_BLOCK_DEPTH", ge=1)
    # Blocks read for one page, at every level together.
    max_page_blocks: int = Field(default=100_000, alias="NOTION_SYNC_MAX_PAGE_BLOCKS", ge=1)
    # The longest Retry-After honoured, in seconds; a longer one is cut to this.
    max_retry_after_s: float = Field(default=300.0, alias="NOTION_SYNC_MAX_RETRY_AFTER", gt=0)
    # Attempts at a request whose answer is malformed or never comes before the object it reads is
    # recorded as failed (when Notion answers other requests; otherwise the step is retried later).
    object_attempts: int = Field(default=3, alias="NOTION_SYNC_OBJECT_ATTEMPTS", ge=1)
    # A mounted secret (Kubernetes Secret, compose secret) instead of the token in the environment.
    notion_token_file: Path | None = Field(default=None, alias="NOTION_TOKEN_FILE")
    # The name under which NOTION_TOKEN/NOTION_BASE_URL serve (notion_sync/workspaces.py).
    workspace: str = Field(default="default", alias="NOTION_SYNC_WORKSPACE")
    # More workspaces: a YAML file of names and credentials, or a folder of mounted secrets.
    credentials_file: Path | None = Field(default=None, alias="NOTION_SYNC_CREDENTIALS_FILE")
    credentials_dir: Path | None = Field(default=None, alias="NOTION_SYNC_CREDENTIALS_DIR")
    # Activities one worker runs at once for each workspace it holds.
    activity_slots: int = Field(default=16, alias="NOTION_SYNC_ACTIVITY_SLOTS", ge=1)
    # Observability of `python worker.py`; ports unset = that endpoint is off.
    metrics_port: int | None = Field(default=None, alias="NOTION_SYNC_METRICS_PORT", ge=0)
    health_port: int | None = Field(default=None, alias="NOTION_SYNC_HEALTH_PORT", ge=0)
    log_format: Literal["text", "json"] = Field(default="text", alias="NOTION_SYNC_LOG_FORMAT")
    # none | console | otlp; unset means otlp when OTEL_EXPORTER_OTLP_ENDPOINT is set, else none.
    traces: Literal["none", "console", "otlp"] | None = Field(default=None, alias="NOTION_SYNC_TRACES")
    otlp_endpoint: str | None = Field(default=None, alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    # S3 destinations (s3://bucket/prefix). Endpoint, region and credentials come from boto3's own
    # chain (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, ~/.aws/config, instance roles...).
    s3_multipart_mb: float = Field(default=8.0, alias="NOTION_SYNC_S3_MULTIPART_MB", gt=0)
    s3_concurrency: int = Field(default=8, alias="NOTION_SYNC_S3_CONCURRENCY", ge=1)
    # How many of a folder destination's newest snapshots stay browsable trees (current always does);
    # older ones are packed to their manifest, their files read from the object store.
    browsable_snapshots: int = Field(default=1, alias="NOTION_SYNC_BROWSABLE_SNAPSHOTS", ge=1)
    # Temporal worker versioning (docs/operations.md, "Upgrading workers"): the worker deployment this
    # worker belongs to and its build (one per release of the code). Both unset: versioning is off.
    deployment_name: str | None = Field(default=None, alias="NOTION_SYNC_DEPLOYMENT_NAME", min_length=1)
    build_id: str | None = Field(default=None, alias="NOTION_SYNC_BUILD_ID", min_length=1)
    # A pause before each object and after each MiB uploaded, in seconds: for tests of an interrupted upload.

    @model_validator(mode="after")
    def _versioning_needs_both(self) -> Settings:
        if (self.deployment_name is None) != (self.build_id is None):
            raise ValueError(
                "worker versioning needs both NOTION_SYNC_DEPLOYMENT_NAME and NOTION_SYNC_BUILD_ID, "
                "or neither"
            )
        return self

    @model_validator(mode="after")
    def _token_from_file(self) -> Settings:
        if self.notion_token is None and self.notion_token_file is not None:
            try:
                self.notion_token = SecretStr(self.notion_token_file.read_text().strip())
            except OSError as error:
                # Not the path itself: a token pasted there by mistake must not reach a terminal.
                raise ValueError(f"NOTION_TOKEN_FILE cannot be read: {error.strerror}") from None
        return self

    def token(self) -> str:
        if self.notion_token is None:
            raise RuntimeError("NOTION_TOKEN is not set")
        return self.notion_token.get_secret_value()

    def budget_path(self) -> Path:
        """One budget file per token: every worker on this host using the token shares it."""
        digest = hashlib.sha256(self.token().encode()).hexdigest()[:16]
        return self.state_dir / "budgets" / f"{digest}.bucket"


def settings_problem(error: ValidationError) -> str:
    """What is wrong with the settings, one line per problem, naming the variable where there is
    one, for an `error:` line instead of a traceback (the values themselves are never echoed)."""
    lines = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem.get("loc", ()))
        message = str(problem.get("msg", "")).removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where else message)
    return "; ".join(lines)
