from datetime import timedelta

import pytest

from maintctl.config.urls import redact_url
from maintctl.timestamps import NotAnInstant, format_instant, parse_duration, parse_instant


@pytest.mark.parametrize(
    "text, expected",
    [
        ("30s", timedelta(seconds=30)),
        ("90m", timedelta(minutes=90)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("1.5h", timedelta(minutes=90)),
    ],
)
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["7", "seven days", "0d", "-1h", "1y", ""])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    "url, shown",
    [
        ("redis://:hunter2@db.internal:6379/0", "redis://:***@db.internal:6379/0"),
        ("redis://app:hunter2@db.internal/1", "redis://app:***@db.internal/1"),
        ("rediss://hunter2@db.internal", "rediss://***@db.internal"),
        ("redis://db.internal:6379/0", "redis://db.internal:6379/0"),
        ("redis://db.internal/0?password=hunter2", "redis://db.internal/0?password=***"),
        ("redis://hunter2:@db.internal:6379/0", "redis://***@db.internal:6379/0"),
    ],
)
def test_passwords_are_never_shown(url, shown):
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("2026-11-22T09:30:00.000Z", "2026-11-22T09:30:00.000Z"),
        ("2026-11-22 09:30", "2026-11-22T09:30:00.000Z"),
        ("2026-11-22T15:00:00+05:30", "2026-11-22T09:30:00.000Z"),
        ("2026-11-22T09:30:00.1234", "2026-11-22T09:30:00.123Z"),
        ("2026-02-30", "2026-03-02T00:00:00.000Z"),
    ],
)
def test_instants_are_read_as_sqlite_reads_them(text, canonical):
    assert format_instant(parse_instant(text)) == canonical


@pytest.mark.parametrize("text", ["tomorrow", "", "now", "2026-11-22T25:00"])
def test_text_naming_no_fixed_instant_is_refused(text):
    with pytest.raises(NotAnInstant):
        parse_instant(text)


@pytest.mark.parametrize(
    "text",
    [
        "failed at redis://:Pa#ss/w?rd@db.internal:6379/0 just now",
        "failed at rediss://app:Pa@ss@db.internal/1",
        "failed at REDIS://:Pa%23ss@db.internal",
    ],
)
def test_any_text_loses_the_passwords_of_the_urls_in_it(text):
    from maintctl.config.urls import redact_text

    shown = redact_text(text)

    assert "Pa" not in shown and "ss" not in shown.replace("rediss", "")
    assert "db.internal" in shown and shown.startswith("failed at ")
