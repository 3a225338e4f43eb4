"""Retention: which snapshots of a destination to keep, decided by one pure function for folders and
S3 alike (`plan_retention`), and the folder's pruning.

Whatever the policy, the snapshot `current` points to stays, and so does the newest one that passed
the shrink guard (a run published with --allow-shrink may have lost pages that only the snapshot
before it still holds); nothing at all is pruned while the last run was refused by the guard (the
callers check `last_run_refused` first).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from notion_sync.models import ExportReport, RetentionPolicy
from notion_sync.snapshot import (
    SNAPSHOTS,
    ManifestUnreadable,
    current_snapshot,
    parse_report,
    read_report,
    release_base,
    snapshot_time,
)

log = logging.getLogger(__name__)

# The period each age rule keeps one snapshot of, from a snapshot's time (UTC).
_PERIODS: dict[str, Callable[[datetime], Hashable]] = {
    "daily": lambda time: time.date(),
    "weekly": lambda time: time.isocalendar()[:2],  # ISO year and week
    "monthly": lambda time: (time.year, time.month),
}


@dataclass(frozen=True)
class RetentionPlan:
    """What retention keeps and why, and what it removes."""

    # Rule → the snapshots it keeps, newest first. Rules: "last", "daily", "weekly", "monthly",
    # "current", "guarded" (the newest that passed the shrink guard), "undated" (a name with no
    # time, which the age rules cannot judge), "all" (an empty policy).
    kept_by: dict[str, list[str]] = field(default_factory=dict)
    # Oldest first.
    removed: list[str] = field(default_factory=list)

    @property
    def kept(self) -> set[str]:
        return {name for names in self.kept_by.values() for name in names}


def plan_retention(
    names: Iterable[str], policy: RetentionPolicy, current: str | None = None, guarded: str | None = None
) -> RetentionPlan:
    """Decides which of the snapshots `names` the policy keeps, as restic does: `keep_last` keeps the
    N newest (names start with their time, so they sort by age); each age rule keeps the newest
    snapshot of each of its last N periods that have snapshots, every rule on its own (a snapshot
    another rule keeps still counts for this one). `current` and `guarded` are always kept.
    """
    newest_first = sorted(set(names), reverse=True)
    kept_by: dict[str, list[str]] = {}

    def keep(rule: str, name: str) -> None:
        kept_by.setdefault(rule, []).append(name)

    if policy.is_empty():
        for name in newest_first:
            keep("all", name)
    for name in newest_first[: policy.keep_last or 0]:
        keep("last", name)
    times = {name: snapshot_time(name) for name in newest_first}
    dated = sorted(((time, name) for name, time in times.items() if time is not None), reverse=True)
    age_rules = {rule: count for rule, count in policy.by_age().items() if count is not None}
    for rule, count in age_rules.items():
        periods: list[Hashable] = []
        for time, name in dated:
            period = _PERIODS[rule](time)
            if periods and periods[-1] == period:
                continue  # an older snapshot of a period already kept
            if len(periods) == count:
                break
            periods.append(period)
            keep(rule, name)
    if age_rules:
        for name in newest_first:
            if times[name] is None:
                keep("undated", name)
    for rule, protected in (("current", current), ("guarded", guarded)):
        if protected in times:
            keep(rule, protected)
    plan = RetentionPlan(kept_by)
    return RetentionPlan(kept_by, [name for name in reversed(newest_first) if name not in plan.kept])


def prune_snapshots(dest: str | Path, policy: RetentionPolicy) -> RetentionPlan:
    """Removes the snapshots of the folder destination `dest` that `policy` does not keep. The store
    objects only they linked stay until the store's garbage collection (`storage/objects.py`), which
    callers run next. Callers hold the store's lock (`ObjectStore.lock`/`try_lock`): packing, under
    it, writes manifest deltas based on snapshots this removes."""
    root = Path(dest).expanduser().resolve()
    snapshots = {p.name: p for p in (root / SNAPSHOTS).glob("*") if p.is_dir() and not p.is_symlink()}
    current = current_snapshot(root)
    current_name = next((name for name, path in snapshots.items() if path.resolve() == current), None)
    guarded = newest_guarded(sorted(snapshots, reverse=True), lambda name: read_report(snapshots[name]))
    plan = plan_retention(snapshots, policy, current_name, guarded)
    for name in plan.removed:
        try:
            release_base(snapshots[name])
        except ManifestUnreadable as error:
            # An older snapshot's manifest depends on this one and cannot be made whole: deleting
            # this one would lose it. Both stay (and verify names the damage).
            log.warning("%s kept: %s", snapshots[name], error)
            continue
        shutil.rmtree(snapshots[name])
    return plan


def passed_guard(report: ExportReport | None) -> bool:
    """Whether a snapshot was published without the shrink guard tripping (older reports: yes)."""
    return report is not None and (report.shrink is None or not report.shrink.tripped)


def newest_guarded(
    names_newest_first: Iterable[str], report_of: Callable[[str], ExportReport | None]
) -> str | None:
    """The newest snapshot that passed the shrink guard: retention never deletes it."""
    return next((name for name in names_newest_first if passed_guard(report_of(name))), None)


def last_run_refused(reports: Path) -> str | None:
    """The error of the destination's last run if the shrink guard refused it, else None."""
    latest = max(reports.glob("*.json"), default=None, key=lambda path: path.name)
    if latest is None or not latest.name.endswith("-failed.json"):
        return None
    try:
        report = parse_report(latest.read_bytes())
    except OSError:
        return None
    if report is None:
        return None
    if report.shrink is not None and report.shrink.tripped and not report.shrink.allowed:
        return report.error or "the shrink guard refused the last run"
    return None
