"""Pydantic models that cross the Temporal boundary: inputs, results, progress, reports, manifest.

None of them ever carries page content or the Notion token: history is visible in the Web UI.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator


class Phase(StrEnum):
    STARTING = "starting"
    DISCOVERING = "discovering"
    LAYOUT = "layout"
    EXPORTING = "exporting"
    TABLES = "tables"
    PUBLISHING = "publishing"
    COMPENSATING = "compensating"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


# "tree": readable names, unique among siblings; "notion": Notion's own `Title <32 hex id>` naming.
Layout = Literal["tree", "notion"]
# "full": every page and row is listed; "changes": only what was edited since the previous snapshot,
# the rest is carried over from it (deletions wait for the next full listing).
Listing = Literal["full", "changes"]


class RetentionPolicy(BaseModel):
    """Which snapshots retention keeps, as restic and borg define it: the `keep_last` newest, and the
    newest snapshot of each of the last `keep_daily` days, `keep_weekly` ISO weeks and `keep_monthly`
    months that have snapshots (UTC, from the time in the snapshot's name). A snapshot any rule keeps
    stays; with no rule at all, every snapshot stays."""

    keep_last: int | None = Field(default=None, ge=1)
    keep_daily: int | None = Field(default=None, ge=1)
    keep_weekly: int | None = Field(default=None, ge=1)
    keep_monthly: int | None = Field(default=None, ge=1)

    def is_empty(self) -> bool:
        return all(count is None for count in (self.keep_last, *self.by_age().values()))

    def by_age(self) -> dict[str, int | None]:
        """The age rules by name: daily, weekly, monthly."""
        return {"daily": self.keep_daily, "weekly": self.keep_weekly, "monthly": self.keep_monthly}

    def keeping_last(self, keep: int | None) -> RetentionPolicy:
        """This policy, also keeping the `keep` newest (None: as it is)."""
        if keep is None:
            return self
        return self.model_copy(update={"keep_last": max(keep, self.keep_last or 0)})


class ExportOptions(BaseModel):
    """Knobs of one export; all have defaults so `{"destination": "/path"}` is a complete input."""

    batch_size: int = Field(default=100, ge=1, le=1000)
    max_parallel_batches: int = Field(default=4, ge=1, le=100)
    include_comments: bool = True
    layout: Layout = "tree"
    # A static HTML site (html/index.html) in each snapshot: pages written with their Markdown, the
    # rest rendered before the snapshot is published.
    html: bool = True
    # A byte-order mark at the start of every CSV, for spreadsheet programs that want one.
    csv_bom: bool = False
    # Re-read every page even when an earlier snapshot holds it unchanged.
    full_refresh: bool = False
    download_files: bool = True
    download_external_files: bool = True
    max_file_mb: float = Field(default=100, gt=0)
    # Forces continue-as-new after this many batches (tests use it); None lets Temporal suggest it.
    batches_per_run: int | None = Field(default=None, ge=1)
    # A sync lists only what changed unless the last full listing (which also catches deletions)
    # is at least this old; 0 lists everything every time.
    full_listing_days: float = Field(default=7, ge=0)
    # Retention after each publish: `retention`'s rules, plus the `keep_snapshots` newest (the one rule
    # inputs had before retention by age; see `retention_policy`).
    keep_snapshots: int | None = Field(default=None, ge=1)
    retention: RetentionPolicy = Field(default_factory=RetentionPolicy)
    # The shrink guard: a run that would lose more than this share of the pages, or more than this
    # many (whichever is smaller), is not published unless `allow_shrink`.
    shrink_limit_percent: float = Field(default=5.0, ge=0, le=100)
    shrink_limit_pages: int = Field(default=50, ge=0)
    allow_shrink: bool = False
    # Export into a destination whose snapshots came from another Notion workspace.
    force_workspace: bool = False
    # Seconds an activity may go without a heartbeat (workers send one every 2 s) before Temporal
    # presumes its worker dead and runs it elsewhere: shorter recovers sooner from a crashed worker;
    # too short repeats the work of a worker that was only too busy to answer.
    worker_lost_after_seconds: int = Field(default=30, ge=5, le=600)

    def retention_policy(self) -> RetentionPolicy:
        """`retention` with `keep_snapshots` as its `keep_last` (the larger, where both are set)."""
        return self.retention.keeping_last(self.keep_snapshots)


class Counters(BaseModel):
    discovered: int = 0
    exported: int = 0
    skipped: int = 0
    failed: int = 0
    api_requests: int = 0
    files_downloaded: int = 0
    files_failed: int = 0
    reused: int = 0

    def add(self, other: Counters) -> None:
        for name in type(self).model_fields:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class WorkspaceIdentity(BaseModel):
    """Who a credential is, as Notion answers `GET /v1/users/me`: ids and names, never the token."""

    bot_id: str
    bot_name: str | None = None
    workspace_id: str | None = None
    workspace_name: str | None = None

    def same_workspace(self, other: WorkspaceIdentity) -> bool:
        """Workspace ids where both are known (older API answers lack them), else the bot."""
        if self.workspace_id and other.workspace_id:
            return self.workspace_id == other.workspace_id
        return self.bot_id == other.bot_id

    def describe(self) -> str:
        name = f"'{self.workspace_name}'" if self.workspace_name else "a workspace"
        return f"{name} ({self.workspace_id or 'bot ' + self.bot_id})"


class ShrinkCheck(BaseModel):
    """What a run would lose against the previous snapshot and its own listing (the shrink guard)."""

    # Objects the previous snapshot held, or this run listed, that answered 403/404 or failed.
    lost: int = 0
    # Objects the previous snapshot held that a full listing no longer returns (deleted, or unshared).
    removed: int = 0
    # Objects the guard measures against: the larger of the previous snapshot and this run's listing.
    base: int = 0
    limit: int = 0
    # A few titles of what was lost or removed, for the report.
    examples: list[str] = Field(default_factory=list)
    tripped: bool = False
    allowed: bool = False

    def summary(self) -> str:
        parts = []
        if self.lost:
            parts.append(f"the integration lost access to {self.lost} objects (403/404 or failed)")
        if self.removed:
            parts.append(f"{self.removed} objects of the previous snapshot are gone from the listing")
        text = " and ".join(parts) or "nothing was lost"
        if self.examples:
            text += ", e.g. " + ", ".join(f"'{title}'" for title in self.examples)
        return text


class StagingRef(BaseModel):
    destination: str
    staging_id: str


class PreviousSnapshot(BaseModel):
    """The complete export a sync builds on: unchanged pages are taken from it, not from Notion."""

    path: str
    # Pages edited at or after this minute may have changed again within it: always re-read them.
    reuse_before: str
    # When the chain of syncs that led to this snapshot last listed the whole workspace; None for
    # snapshots that cannot seed a changes-only listing (older manifests without parents).
    full_listing_at: datetime | None = None


class ExportState(BaseModel):
    """What a run hands to its continuation: a cursor and counters, never a list of pages."""

    phase: Phase = Phase.STARTING
    staging_id: str = ""
    previous: PreviousSnapshot | None = None
    started_at: datetime | None = None
    search_cursor: str | None = None
    search_done: bool = False
    data_source_cursor: str | None = None
    data_sources_done: bool = False
    listing: Listing = "full"
    full_listing_at: datetime | None = None
    carried_over: bool = False
    identity: WorkspaceIdentity | None = None
    max_seq: int = 0
    next_seq: int = 1
    # Batches cancelled by a pause, to run again: at most max_parallel_batches pairs.
    retry_ranges: list[tuple[int, int]] = Field(default_factory=list)
    tables_cursor: int | None = 0
    counters: Counters = Field(default_factory=Counters)
    runs: int = 1


class ExportInput(BaseModel):
    destination: str
    # The workspace's name (never its token): its activities run on the task queue of that name,
    # served only by workers holding its credential.
    workspace: str = "default"
    options: ExportOptions = Field(default_factory=ExportOptions)
    state: ExportState | None = None


class PrepareInput(BaseModel):
    staging: StagingRef
    full_refresh: bool = False
    # Checked against the destination's snapshots before anything is written (None: not checked).
    identity: WorkspaceIdentity | None = None
    force_workspace: bool = False


class ShrinkInput(BaseModel):
    staging: StagingRef
    previous: PreviousSnapshot | None
    options: ExportOptions


class DiscoverInput(BaseModel):
    staging: StagingRef
    cursor: str | None = None
    max_requests: int = 10
    # A changes-only listing: objects last edited before this instant are not listed.
    edited_since: str | None = None


class CarryOverInput(BaseModel):
    staging: StagingRef
    previous: PreviousSnapshot


class CarryOverResult(BaseModel):
    carried: int
    # False when the previous snapshot could not stand in for a listing: list everything instead.
    usable: bool


class DiscoverResult(BaseModel):
    next_cursor: str | None
    discovered: int
    api_requests: int
    remaining: int = 0


class UsersResult(BaseModel):
    users: int
    api_requests: int

    @model_validator(mode="before")
    @classmethod
    def _bare_count(cls, value: Any) -> Any:
        # Histories recorded before the users' requests were counted hold the bare number of users.
        return {"users": value, "api_requests": 0} if isinstance(value, int) else value


class BatchInput(BaseModel):
    staging: StagingRef
    seq_from: int
    seq_to: int
    options: ExportOptions = Field(default_factory=ExportOptions)
    previous: PreviousSnapshot | None = None


class BatchResult(BaseModel):
    counters: Counters


class LayoutInput(BaseModel):
    staging: StagingRef
    layout: Layout = "tree"


class LayoutResult(BaseModel):
    placed: int
    max_seq: int


class TablesInput(BaseModel):
    staging: StagingRef
    seq_from: int
    limit: int
    layout: Layout = "tree"
    csv_bom: bool = False


class TablesResult(BaseModel):
    written: int
    next_seq: int | None


class PublishInput(BaseModel):
    staging: StagingRef
    snapshot: str
    report: ExportReport
    html: bool = False
    retention: RetentionPolicy = Field(default_factory=RetentionPolicy)
    # Retention as workflows before `retention` sent it (the N newest), for an attempt they scheduled.
    keep_snapshots: int | None = None

    def retention_policy(self) -> RetentionPolicy:
        return self.retention.keeping_last(self.keep_snapshots)


class ReportInput(BaseModel):
    """The report of a run that publishes nothing (failed or cancelled)."""

    staging: StagingRef
    report: ExportReport


class ChangeCounts(BaseModel):
    """Pages and rows that changed from one snapshot to the next (see `notion_sync/history.py`)."""

    added: int = 0
    removed: int = 0
    moved: int = 0
    renamed: int = 0
    edited: int = 0

    @property
    def total(self) -> int:
        return self.added + self.removed + self.moved + self.renamed + self.edited


class PublishResult(BaseModel):
    snapshot_path: str  # a folder, or s3://bucket/prefix/snapshots/<name>/ for an S3 destination
    local_path: str | None = None  # for S3: the snapshot in the worker's local mirror
    objects: int
    files: int
    # Lines of problems.jsonl: objects skipped or failed, and problems inside exported ones.
    problems: int = 0
    # Versus the snapshot that was current before (None: the destination's first snapshot).
    changes: ChangeCounts | None = None


class ExportProgress(BaseModel):
    phase: Phase
    discovered: int
    exported: int
    skipped: int
    failed: int
    api_requests: int
    requests_per_second: float
    eta_seconds: float | None
    paused: bool
    in_flight: int
    runs: int


class Problem(BaseModel):
    object_id: str
    kind: str
    reason: str


ReportStatus = Literal["completed", "failed", "cancelled"]


class ExportReport(BaseModel):
    status: ReportStatus
    destination: str
    snapshot: str | None = None
    counters: Counters
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None = None
    listing: Listing = "full"
    full_listing_at: datetime | None = None
    workspace: str | None = None
    identity: WorkspaceIdentity | None = None
    shrink: ShrinkCheck | None = None
    # Lines of the snapshot's problems.jsonl (set when it is published).
    problems: int = 0
    # Pages and rows changed since the snapshot before (set when it is published; None for the first).
    changes: ChangeCounts | None = None


class ManifestFile(BaseModel):
    path: str
    sha256: str
    size: int


class ManifestObject(BaseModel):
    id: str
    type: Literal["page", "database", "data_source", "users"]
    title: str
    # Orders a data source's rows (None in manifests written before it was recorded).
    created_time: str | None = None
    last_edited_time: str | None
    # The page, database or data source it lives under (None at the workspace root).
    parent: str | None = None
    path: str | None
    status: Literal["exported", "skipped", "failed"]
    reason: str | None = None
    files: list[ManifestFile] = Field(default_factory=list)


class GarbageReport(BaseModel):
    """What a garbage collection of a destination's object store found and did."""

    # Objects in the store when it started, and how many of them some kept snapshot references.
    objects: int = 0
    referenced: int = 0
    # Unreferenced objects deleted (with a dry run: that would be), and the bytes they held.
    deleted: int = 0
    freed_bytes: int = 0
    # Unreferenced objects kept because they are younger than the grace period (S3: a run that is
    # still uploading may be about to reference them).
    young: int = 0
    # Files of snapshots written before the store that were moved into it on the way.
    adopted: int = 0
    dry_run: bool = False


class ManifestHeader(BaseModel):
    format: Literal["notion-sync-manifest"] = "notion-sync-manifest"
    version: int = 1
    objects: int
    notion_version: str = "2025-09-03"


class ManifestDeltaHeader(BaseModel):
    """The first line of an older snapshot's `manifest.delta.jsonl`: the manifest it stands for is
    the `base` snapshot's (a newer sibling) with the lines that follow applied, and is exactly the
    bytes `manifest_sha256` names."""

    format: Literal["notion-sync-manifest-delta"] = "notion-sync-manifest-delta"
    version: int = 1
    base: str
    manifest_sha256: str
    manifest_size: int


PublishInput.model_rebuild()


class ScheduledExportInput(BaseModel):
    """What a schedule starts: the export to run, and the fixed id it runs (or is running) under.

    The id is computed where the schedule is created, as the CLI does for `export`, so the worker
    never re-derives it from a path that may resolve differently on its host.
    """

    export: ExportInput
    export_workflow_id: str


class ScheduledRunResult(BaseModel):
    """What one scheduled run did: ids and outcome of the export, never its content."""

    workflow_id: str
    run_id: str
    attached: bool
    status: Literal["completed", "failed", "cancelled", "terminated", "timed_out"]
    snapshot: str | None = None
    error: str | None = None


# --- restore (issue 16) ---------------------------------------------------------------------------


class RestoreInput(BaseModel):
    """A restore into Notion: what (a destination, a snapshot of it, pages) and where (a page)."""

    # A folder or s3:// destination, or a snapshot folder.
    source: str
    # A snapshot name of the destination (None: its current one).
    snapshot: str | None = None
    # Page ids or Markdown paths whose subtrees are restored (empty: everything).
    pages: list[str] = Field(default_factory=list)
    # The page everything is created under; the workspace's integration must be able to edit it.
    target: str
    # The workspace's name (never its token): its worker holds the credential.
    workspace: str = "default"
    batch_size: int = Field(default=20, ge=1, le=500)
    # Forces continue-as-new after this many batches (None: when Temporal suggests it).
    batches_per_run: int | None = None
    worker_lost_after_seconds: int = Field(default=30, ge=5, le=600)
    # The workers' request timeout: a range's heartbeat timeout is at least twice it.
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    # Moves what the restore of this id created to the trash instead of restoring.
    undo: str | None = None
    state: RestoreState | None = None


class RestoreCounts(BaseModel):
    planned: int = 0
    restored: int = 0
    pages: int = 0
    databases: int = 0
    data_sources: int = 0
    linked: int = 0
    losses: int = 0
    api_requests: int = 0


class RestoreState(BaseModel):
    """The workflow's whole state: a phase, a cursor into the plan, counters."""

    restore_id: str = ""
    phase: Literal["planning", "creating", "filling", "linking", "done", "cancelled", "failed"] = "planning"
    cursor: int = 0
    counts: RestoreCounts = Field(default_factory=RestoreCounts)
    started_at: datetime | None = None
    runs: int = 1
    # Paused by the user (carried across continue-as-new).
    paused: bool = False


class RestoreStep(BaseModel):
    """One activity of a restore: its id (the folder under the state folder), a range of the plan."""

    restore_id: str
    source: str
    snapshot: str | None = None
    pages: list[str] = Field(default_factory=list)
    target: str
    cursor: int = 0
    limit: int = 0


class RestoreStepResult(BaseModel):
    next_cursor: int
    # Objects handled by this step (created, or lost and reported).
    handled: int = 0
    counts: RestoreCounts = Field(default_factory=RestoreCounts)
    done: bool = False


class RestoreProgress(BaseModel):
    phase: str
    planned: int
    restored: int
    linked: int
    api_requests: int
    paused: bool
    runs: int


class RestoreReport(BaseModel):
    """What a restore did: counts and where its report and mapping are, never page content."""

    restore_id: str
    status: Literal["completed", "failed", "cancelled"]
    target: str
    counts: RestoreCounts
    # `<state>/restores/<id>/report.json` and `mapping.jsonl` (old id -> new id, one a line).
    report_path: str | None = None
    mapping_path: str | None = None
    error: str | None = None
    # An undo: how many objects (and their content) were moved to the trash.
    trashed: int | None = None


RestoreInput.model_rebuild()
