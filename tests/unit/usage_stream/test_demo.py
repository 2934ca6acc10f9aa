"""The demo's events are the same on a second run: same times, same messageIds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from usage_stream import demo


def test_the_same_anchor_gives_the_same_events_and_ids() -> None:
    now = datetime(2026, 12, 8, 1, 30, tzinfo=UTC)
    first, second = demo.generate("acme", demo.Plan(), now), demo.generate("acme", demo.Plan(), now)
    assert first == second
    ids = [e["messageId"] for e in first]
    assert len(set(ids)) == len(ids)
    assert all(e["timestamp"] < "2026-12-08T01:30" for e in first)  # every one before the anchor


def test_another_tenant_or_anchor_gives_other_ids() -> None:
    now = datetime(2026, 12, 8, 1, 30, tzinfo=UTC)
    acme = {e["messageId"] for e in demo.generate("acme", demo.Plan(), now)}
    globex = {e["messageId"] for e in demo.generate("globex", demo.Plan(), now)}
    later = demo.generate("acme", demo.Plan(), datetime(2026, 12, 9, tzinfo=UTC))
    assert not acme & globex
    assert not acme & {e["messageId"] for e in later}


def test_the_anchor_is_kept_for_the_next_run(tmp_path: Path) -> None:
    first, again = demo.anchor(tmp_path)
    assert not again and first.second == 0 and first.microsecond == 0
    assert demo.anchor(tmp_path) == (first, True)


def test_a_broken_anchor_file_starts_anew(tmp_path: Path) -> None:
    (tmp_path / demo.ANCHOR_FILE).write_text("not a time")
    moment, again = demo.anchor(tmp_path)
    assert not again
    assert demo.anchor(tmp_path) == (moment, True)
