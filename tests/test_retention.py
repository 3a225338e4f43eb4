"""Retention by age: the one function that decides what stays (`plan_retention`), and `prune` on a
folder destination through the CLI."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from notion_sync.cli import app
from notion_sync.cli.options import export_options
from notion_sync.models import (
    Counters,
    ExportOptions,
    ExportReport,
    PublishInput,
    RetentionPolicy,
    ShrinkCheck,
)
from notion_sync.retention import plan_retention
from notion_sync.snapshot import REPORT, SNAPSHOTS, snapshot_name
from notion_sync.storage.objects import ObjectStore


def _name(day: date, hour: int) -> str:
    return snapshot_name(datetime(day.year, day.month, day.day, hour, tzinfo=UTC), "abcdef0123")


# 2025, two snapshots a day (06:00 and 18:00 UTC), three on its last day, with gaps: 25-27 and 30
# December, and the end of November.
_GAPS = {
    date(2025, 12, 30),
    *(date(2025, 12, d) for d in (25, 26, 27)),
    *(date(2025, 11, d) for d in range(21, 31)),
}
_DAYS = [date(2025, 1, 1) + timedelta(days=n) for n in range(365)]
YEAR = sorted(
    [_name(day, hour) for day in _DAYS if day not in _GAPS for hour in (6, 18)]
    + [_name(date(2025, 12, 31), 12)]
)


def test_a_year_of_snapshots_keeps_the_newest_of_each_day_week_and_month_asked_for() -> None:
    policy = RetentionPolicy(keep_last=2, keep_daily=5, keep_weekly=3, keep_monthly=4)
    current, guarded = _name(date(2025, 6, 15), 6), _name(date(2025, 3, 3), 6)

    plan = plan_retention(YEAR, policy, current=current, guarded=guarded)

    def at(month: int, day: int, hour: int = 18) -> str:
        return _name(date(2025, month, day), hour)

    assert plan.kept_by == {
        "last": [at(12, 31), at(12, 31, 12)],
        # Days with snapshots: the 30th and 25-27 December have none.
        "daily": [at(12, 31), at(12, 29), at(12, 28), at(12, 24), at(12, 23)],
        # ISO weeks: 29-31 December 2025 is 2026-W01, then Monday 22 to Sunday 28, then 15-21.
        "weekly": [at(12, 31), at(12, 28), at(12, 21)],
        # November's newest is the 20th.
        "monthly": [at(12, 31), at(11, 20), at(10, 31), at(9, 30)],
        "current": [current],
        "guarded": [guarded],
    }
    assert len(plan.kept) == 12
    assert plan.removed == sorted(set(YEAR) - plan.kept)
    assert len(plan.removed) + len(plan.kept) == len(YEAR) == 2 * (365 - 14) + 1


def test_days_are_utc_and_each_rule_counts_on_its_own() -> None:
    late, early = "2026-03-01T23-30-00Z-aaaaaaaa", "2026-03-02T00-30-00Z-bbbbbbbb"
    plan = plan_retention([late, early], RetentionPolicy(keep_daily=2, keep_monthly=1))
    # Two UTC days, two months: the newest is March's, so February keeps nothing more (one month asked).
    assert plan.kept_by == {"daily": [early, late], "monthly": [early]} and plan.removed == []
    assert plan_retention([late, early], RetentionPolicy(keep_daily=1)).removed == [late]


def test_fewer_periods_than_asked_keep_all_of_them() -> None:
    names = [_name(date(2026, 1, 5), hour) for hour in (1, 2, 3)]
    assert plan_retention(names, RetentionPolicy(keep_daily=30, keep_weekly=52)).removed == names[:2]


def test_no_rule_keeps_everything_and_age_rules_keep_what_they_cannot_date() -> None:
    names = ["2026-01-01T00-00-00Z", *YEAR[-3:]]  # a name with no run suffix carries no time
    assert plan_retention(names, RetentionPolicy()).removed == []
    by_age = plan_retention(names, RetentionPolicy(keep_daily=1))
    assert by_age.kept_by["undated"] == ["2026-01-01T00-00-00Z"] and by_age.removed == YEAR[-3:-1]
    # The N newest go by name, which starts with the time.
    assert plan_retention(names, RetentionPolicy(keep_last=1)).removed == sorted(names)[:-1]


def test_keep_alone_travels_as_keep_snapshots_too() -> None:
    """A worker from before retention by age reads only `keep_snapshots`: `--keep N` alone still prunes
    there; with an age rule it must not (that worker would keep only the N newest)."""
    alone = export_options(retention=RetentionPolicy(keep_last=3))
    assert alone.keep_snapshots == 3 and alone.retention.is_empty()
    assert alone.retention_policy() == RetentionPolicy(keep_last=3)
    aged = export_options(retention=RetentionPolicy(keep_last=3, keep_daily=7))
    assert aged.keep_snapshots is None and aged.retention == RetentionPolicy(keep_last=3, keep_daily=7)


def test_keep_snapshots_of_older_inputs_is_the_policys_keep_last() -> None:
    old = ExportOptions.model_validate({"keep_snapshots": 3})
    assert old.retention_policy() == RetentionPolicy(keep_last=3)
    both = ExportOptions(keep_snapshots=2, retention=RetentionPolicy(keep_last=5, keep_daily=7))
    assert both.retention_policy() == RetentionPolicy(keep_last=5, keep_daily=7)
    assert ExportOptions().retention_policy().is_empty()
    report = ExportReport(
        status="completed", destination="/d", counters=Counters(), started_at=None, finished_at=None
    )
    attempt = PublishInput.model_validate(
        {
            "staging": {"destination": "/d", "staging_id": "s"},
            "snapshot": "x",
            "report": report,
            "keep_snapshots": 4,
        }
    )
    assert attempt.retention_policy() == RetentionPolicy(keep_last=4)


def _snapshot(root: Path, name: str, shrink: ShrinkCheck | None = None) -> None:
    folder = root / SNAPSHOTS / name
    folder.mkdir(parents=True)
    report = ExportReport(
        status="completed",
        destination=str(root),
        counters=Counters(),
        started_at=None,
        finished_at=None,
        shrink=shrink,
    )
    (folder / REPORT).write_text(report.model_dump_json())


def test_prune_keeps_the_newest_of_the_last_days_on_a_folder(tmp_path: Path) -> None:
    root = tmp_path / "backup"
    times = [(1, 6), (1, 18), (2, 6), (2, 18), (3, 6), (3, 12), (3, 18)]
    names = [_name(date(2026, 2, day), hour) for day, hour in times]
    for name in names[:-1]:
        _snapshot(root, name)
    # The newest was published past the shrink guard: the one before it stays whatever the rules say.
    _snapshot(root, names[-1], ShrinkCheck(tripped=True, allowed=True))
    (root / "current").symlink_to(f"{SNAPSHOTS}/{names[-1]}")

    result = CliRunner().invoke(app, ["prune", str(root), "--keep-daily", "2"])

    assert result.exit_code == 0, result.output
    kept = [names[3], names[5], names[6]]
    assert sorted(p.name for p in (root / SNAPSHOTS).iterdir()) == kept
    removed = [
        line.removeprefix("removed ") for line in result.output.splitlines() if line.startswith("removed")
    ]
    assert removed == [str(root / SNAPSHOTS / name) for name in (names[0], names[1], names[2], names[4])]
    assert f"kept (--keep-daily 2): {names[6]}, {names[3]}" in result.output
    assert f"kept (current): {names[6]}" in result.output
    assert f"kept (newest that passed the shrink guard): {names[5]}" in result.output

    # While the store is held (a `gc` packing, which writes deltas based on what prune removes):
    # refused, nothing removed.
    with ObjectStore(root).try_lock():
        busy = CliRunner().invoke(app, ["prune", str(root), "--keep-daily", "1", "--keep", "2"])
    assert busy.exit_code == 1 and "error:" in busy.output
    assert sorted(p.name for p in (root / SNAPSHOTS).iterdir()) == kept

    again = CliRunner().invoke(app, ["prune", str(root), "--keep-daily", "1", "--keep", "2"])
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in (root / SNAPSHOTS).iterdir()) == kept[1:]


def test_prune_needs_a_rule_and_refuses_a_bad_count(tmp_path: Path) -> None:
    _snapshot(tmp_path, _name(date(2026, 2, 1), 6))
    for args in ([], ["--keep-weekly", "0"]):
        result = CliRunner().invoke(app, ["prune", str(tmp_path), *args])
        assert result.exit_code == 2, result.output
    assert "--keep-weekly" in result.output
    assert len(list((tmp_path / SNAPSHOTS).iterdir())) == 1
