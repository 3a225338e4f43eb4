"""Exact request counters, served at GET /_emulator/stats.

The server runs on one event loop, so plain integer increments are exact without locks.
"""

from __future__ import annotations

from collections import Counter
from typing import Any


class Stats:
    def __init__(self, track_ids: bool = False) -> None:
        self.track_ids = track_ids
        self.in_flight = 0
        self.reset()

    def reset(self) -> None:
        self.requests_total = 0
        self.rate_limited_total = 0
        self.unauthorized_total = 0  # /v1 requests with a wrong or missing bearer token (401)
        self.bytes_sent = 0
        self.concurrent_peak = self.in_flight
        self.by_endpoint: Counter[str] = Counter()
        self.by_status: Counter[str] = Counter()
        self.by_endpoint_status: dict[str, Counter[str]] = {}
        self.faults_injected: Counter[str] = Counter()
        self.page_fetches: Counter[str] = Counter()
        self.children_fetches: Counter[str] = Counter()
        # Answers of hostile modes, "<mode>:<id>" (counted when the request arrives: a hang never ends).
        self.hostile: Counter[str] = Counter()

    def started(self) -> None:
        self.in_flight += 1
        if self.in_flight > self.concurrent_peak:
            self.concurrent_peak = self.in_flight

    def finished(self, endpoint: str, status: str, body_bytes: int) -> None:
        """Count one finished request; `status` is the HTTP code, or "reset" for aborted ones."""
        self.in_flight -= 1
        self.requests_total += 1
        self.bytes_sent += body_bytes
        self.by_endpoint[endpoint] += 1
        self.by_status[status] += 1
        per_endpoint = self.by_endpoint_status.get(endpoint)
        if per_endpoint is None:
            per_endpoint = self.by_endpoint_status[endpoint] = Counter()
        per_endpoint[status] += 1
        if status == "429":
            self.rate_limited_total += 1

    def hostile_answer(self, mode: str, object_id: str) -> None:
        self.hostile[f"{mode}:{object_id}"] += 1

    def fetched_page(self, page_id: str) -> None:
        if self.track_ids:
            self.page_fetches[page_id] += 1

    def fetched_children(self, block_id: str) -> None:
        if self.track_ids:
            self.children_fetches[block_id] += 1

    def snapshot(self) -> dict[str, Any]:
        snap: dict[str, Any] = {
            "requests_total": self.requests_total,
            "by_endpoint": dict(self.by_endpoint),
            "by_status": dict(self.by_status),
            "by_endpoint_status": {k: dict(v) for k, v in self.by_endpoint_status.items()},
            "rate_limited_total": self.rate_limited_total,
            "unauthorized_total": self.unauthorized_total,
            "bytes_sent": self.bytes_sent,
            "in_flight": self.in_flight,
            "concurrent_peak": self.concurrent_peak,
            "faults_injected": dict(self.faults_injected),
        }
        if self.hostile:
            snap["hostile"] = dict(self.hostile)
        if self.track_ids:
            snap["fetches_by_id"] = {
                "pages": dict(self.page_fetches),
                "block_children": dict(self.children_fetches),
            }
        return snap
