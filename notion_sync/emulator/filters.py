"""What search and query answer with: timestamp filters and sorts over rows, and id sequences that
compute ids on access (a 10,000-row query need not build 10,000 strings to serve one page of it)."""

from array import array
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, overload

from notion_sync.emulator.content import JSON
from notion_sync.emulator.generate import BASE, DAY


class IdSequence(Sequence[str]):
    """Ids computed on access from compact entries (page index >= 0, data source k as -(k + 1))."""

    def __init__(
        self,
        page_id: Callable[[int], str],
        source_id: Callable[[int], str],
        entries: Sequence[int],
        reverse: bool = False,
    ) -> None:
        self._page_id, self._source_id = page_id, source_id
        self._entries, self._reverse = entries, reverse

    def __len__(self) -> int:
        return len(self._entries)

    def _id(self, entry: int) -> str:
        return self._page_id(entry) if entry >= 0 else self._source_id(-entry - 1)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        n = len(self._entries)
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(n))]
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(index)
        return self._id(self._entries[n - 1 - index if self._reverse else index])

    def __iter__(self) -> Iterator[str]:
        return (self[i] for i in range(len(self)))


def _instant(value: Any) -> tuple[float, bool]:
    """(seconds since epoch, whether `value` was a bare date) of an ISO date or date-time."""
    if not isinstance(value, str):
        raise ValueError(f"not a date: {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not a date: {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp(), "T" not in value


def timestamp_filter(spec: JSON) -> Callable[[int, int], bool]:
    """Timestamp filters (and/or of them) over (created, edited) minutes since BASE."""
    for joiner, combine in (("and", all), ("or", any)):
        if joiner in spec:
            parts = [timestamp_filter(p) for p in spec[joiner]]
            return lambda c, e: combine(p(c, e) for p in parts)
    field = spec.get("timestamp")
    if field not in ("created_time", "last_edited_time") or not isinstance(spec.get(field), dict):
        raise ValueError("only created_time / last_edited_time timestamp filters are supported")
    ((operator, value),) = spec[field].items()
    seconds, bare = _instant(value)
    low = (seconds - BASE) / 60
    high = low + (DAY if bare else 1)  # the instant's minute (or day) is [low, high)
    tests: dict[str, Callable[[int], bool]] = {
        "equals": lambda m: low <= m < high,
        "before": lambda m: m < low,
        "after": lambda m: m >= high,
        "on_or_before": lambda m: m < high,
        "on_or_after": lambda m: m >= low,
    }
    if operator not in tests:
        raise ValueError(f"unsupported timestamp condition: {operator}")
    test = tests[operator]
    return (lambda c, e: test(c)) if field == "created_time" else (lambda c, e: test(e))


def timestamp_sort(
    sorts: list[JSON], ctime: "array[int]", etime: "array[int]"
) -> Callable[[int], tuple[int, ...]] | None:
    """A key over row indexes (ties keep row order), or None to leave rows in order."""
    if not sorts:
        return None
    columns: list[tuple[array[int], int]] = []
    for sort in sorts:
        field = sort.get("timestamp")
        if field not in ("created_time", "last_edited_time"):
            raise ValueError("only timestamp sorts are supported")
        columns.append(
            (ctime if field == "created_time" else etime, -1 if sort.get("direction") == "descending" else 1)
        )
    return lambda i: (*(sign * column[i] for column, sign in columns), i)
