"""Date phrases of a question resolved against the time it is asked (recall/temporal.py)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tiered_memory.recall.records import RecallHit
from tiered_memory.recall.temporal import (
    TimeRange,
    find_time_ranges,
    query_time_range,
    strip_time_phrases,
    time_boost,
)
from tiered_memory.recall.tool import RECALL_HEADER, age, format_recall_hits, timeline

NOW = datetime(2026, 10, 14, 15, 30, tzinfo=timezone.utc)  # a Wednesday


def days(text: str, now: datetime = NOW) -> list[tuple[date, date]]:
    """Each range as (first day, last day), both inclusive."""
    return [
        (r.start.date(), (r.end - timedelta(microseconds=1)).date())
        for r in find_time_ranges(text, now)
    ]


def one(text: str, now: datetime = NOW) -> tuple[date, date]:
    found = days(text, now)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("what did I do yesterday?", date(2026, 10, 13), date(2026, 10, 13)),
        ("what did I eat today", date(2026, 10, 14), date(2026, 10, 14)),
        ("where did I go last night", date(2026, 10, 13), date(2026, 10, 13)),
        ("the day before yesterday", date(2026, 10, 12), date(2026, 10, 12)),
        ("this morning I ran", date(2026, 10, 14), date(2026, 10, 14)),
    ],
)
def test_named_days(text: str, first: date, last: date) -> None:
    assert one(text) == (first, last)


def test_last_week_is_the_previous_monday_to_sunday() -> None:
    assert one("What did I cook last week?") == (date(2026, 10, 5), date(2026, 10, 11))


def test_this_and_next_week() -> None:
    assert one("this week") == (date(2026, 10, 12), date(2026, 10, 18))
    assert one("next week") == (date(2026, 10, 19), date(2026, 10, 25))


def test_earlier_this_week_ends_today() -> None:
    assert one("earlier this week") == (date(2026, 10, 12), date(2026, 10, 14))


def test_last_month_and_last_year_are_calendar_units() -> None:
    assert one("last month") == (date(2026, 9, 1), date(2026, 9, 30))
    assert one("last year") == (date(2025, 1, 1), date(2025, 12, 31))
    assert one("this year") == (date(2026, 1, 1), date(2026, 12, 31))


def test_last_month_in_january_is_december_of_the_year_before() -> None:
    assert one("last month", datetime(2026, 1, 10, tzinfo=timezone.utc)) == (
        date(2025, 12, 1),
        date(2025, 12, 31),
    )


def test_in_may_is_the_most_recent_may() -> None:
    assert one("Where was I living in May?") == (date(2026, 5, 1), date(2026, 5, 31))
    in_april = datetime(2026, 4, 2, tzinfo=timezone.utc)
    assert one("Where was I living in May?", in_april) == (date(2025, 5, 1), date(2025, 5, 31))


def test_the_current_month_counts_as_this_year() -> None:
    assert one("in October") == (date(2026, 10, 1), date(2026, 10, 31))


def test_last_may_is_strictly_before_the_current_month() -> None:
    in_may = datetime(2026, 5, 20, tzinfo=timezone.utc)
    assert one("last May", in_may) == (date(2025, 5, 1), date(2025, 5, 31))
    assert one("last May") == (date(2026, 5, 1), date(2026, 5, 31))


def test_month_with_year() -> None:
    assert one("in May 2024") == (date(2024, 5, 1), date(2024, 5, 31))
    assert one("in May of 2024") == (date(2024, 5, 1), date(2024, 5, 31))


def test_parts_of_a_month() -> None:
    assert one("early June") == (date(2026, 6, 1), date(2026, 6, 10))
    assert one("in mid June") == (date(2026, 6, 10), date(2026, 6, 20))
    assert one("late February") == (date(2026, 2, 20), date(2026, 2, 28))
    assert one("at the end of May") == (date(2026, 5, 20), date(2026, 5, 31))


@pytest.mark.parametrize(
    "text", ["on March 3", "March 3rd", "the 3rd of March", "3 March", "on Mar. 3", "March 3"]
)
def test_a_day_of_a_month(text: str) -> None:
    assert one(text) == (date(2026, 3, 3), date(2026, 3, 3))


def test_a_day_later_in_the_year_is_last_year() -> None:
    assert one("on December 24") == (date(2025, 12, 24), date(2025, 12, 24))


def test_a_day_with_its_year() -> None:
    assert one("on March 3, 2025") == (date(2025, 3, 3), date(2025, 3, 3))
    assert one("2023/05/30") == (date(2023, 5, 30), date(2023, 5, 30))
    assert one("on 2023-05-30") == (date(2023, 5, 30), date(2023, 5, 30))
    assert one("on 5/30/2023") == (date(2023, 5, 30), date(2023, 5, 30))


def test_an_impossible_day_falls_back_to_its_month() -> None:
    assert days("on February 30") == [(date(2026, 2, 1), date(2026, 2, 28))]
    assert days("2023-13-45") == []


def test_n_days_ago() -> None:
    assert one("what did I do 1 day ago") == (date(2026, 10, 13), date(2026, 10, 13))
    assert one("two days ago") == (date(2026, 10, 12), date(2026, 10, 12))
    first, last = one("10 days ago")  # approximate: a day of slack each side
    assert first <= date(2026, 10, 4) <= last and last - first == timedelta(days=2)


def test_weeks_months_years_ago_are_centred_and_widened() -> None:
    first, last = one("two weeks ago")
    assert first < date(2026, 9, 30) < last and (last - first).days <= 9
    first, last = one("two months ago")
    assert first < date(2026, 8, 14) < last and 25 <= (last - first).days <= 35
    first, last = one("a year ago")
    assert first < date(2025, 10, 14) < last and (last - first).days <= 370


def test_vague_counts_are_wider() -> None:
    exact = one("three days ago")
    vague = one("a few days ago")
    assert (vague[1] - vague[0]) > (exact[1] - exact[0])
    assert one("a couple of weeks ago")[0] < date(2026, 9, 30) < one("a couple of weeks ago")[1]


def test_rolling_ranges_end_today() -> None:
    assert one("in the past two weeks") == (date(2026, 9, 30), date(2026, 10, 14))
    assert one("over the past month") == (date(2026, 9, 14), date(2026, 10, 14))
    assert one("in the last 3 days")[1] == date(2026, 10, 14)
    assert one("the past week") == (date(2026, 10, 7), date(2026, 10, 14))


def test_weekdays() -> None:
    assert one("last Monday") == (date(2026, 10, 12), date(2026, 10, 12))
    assert one("on Friday") == (date(2026, 10, 9), date(2026, 10, 9))
    assert one("on Wednesday") == (date(2026, 10, 7), date(2026, 10, 7))  # not today
    assert one("next Monday") == (date(2026, 10, 19), date(2026, 10, 19))
    assert one("Saturday morning") == (date(2026, 10, 10), date(2026, 10, 10))


def test_weekends() -> None:
    assert one("last weekend") == (date(2026, 10, 10), date(2026, 10, 11))
    assert one("this weekend") == (date(2026, 10, 17), date(2026, 10, 18))
    sunday = datetime(2026, 10, 18, 12, tzinfo=timezone.utc)
    assert one("the weekend", sunday) == (date(2026, 10, 17), date(2026, 10, 18))
    assert one("last weekend", sunday) == (date(2026, 10, 10), date(2026, 10, 11))


def test_seasons() -> None:
    assert one("last summer") == (date(2026, 6, 1), date(2026, 8, 31))
    in_july = datetime(2026, 7, 10, tzinfo=timezone.utc)
    assert one("last summer", in_july) == (date(2025, 6, 1), date(2025, 8, 31))
    assert one("this summer", in_july) == (date(2026, 6, 1), date(2026, 8, 31))
    assert one("in the winter") == (date(2025, 12, 1), date(2026, 2, 28))
    assert one("in the summer of 2024") == (date(2024, 6, 1), date(2024, 8, 31))


def test_years_and_since() -> None:
    assert one("in 2024") == (date(2024, 1, 1), date(2024, 12, 31))
    assert one("since May") == (date(2026, 5, 1), date(2026, 10, 14))
    assert one("since 2020") == (date(2020, 1, 1), date(2026, 10, 14))


@pytest.mark.parametrize(
    "text",
    [
        "May I ask what my key was?",
        "I may go there",
        "we march on",
        "the last time we spoke",
        "I sat down at 2024 Main Street",  # a number, not a year without a cue
        "what is my favourite season",
        "summer rolls are great",
        "I run every day",
    ],
)
def test_ordinary_words_are_no_dates(text: str) -> None:
    assert days(text) == []


def test_capitalized_month_words_mid_sentence_are_months() -> None:
    assert days("between March and May") == [
        (date(2026, 3, 1), date(2026, 3, 31)),
        (date(2026, 5, 1), date(2026, 5, 31)),
    ]


def test_the_longer_phrase_wins() -> None:
    found = find_time_ranges("on March 3 I moved", NOW)
    assert [r.phrase for r in found] == ["on March 3"]


def test_query_range_spans_all_phrases() -> None:
    span = query_time_range("between March and May", NOW)
    assert span is not None
    assert span.start == datetime(2026, 3, 1, tzinfo=timezone.utc)
    assert span.end == datetime(2026, 6, 1, tzinfo=timezone.utc)
    assert query_time_range("where do I live?", NOW) is None


def test_naive_now_is_utc_and_an_aware_now_keeps_its_zone() -> None:
    naive = find_time_ranges("yesterday", datetime(2026, 10, 14, 1, 0))[0]
    assert naive.start == datetime(2026, 10, 13, tzinfo=timezone.utc)
    tokyo = timezone(timedelta(hours=9))
    local = find_time_ranges("yesterday", datetime(2026, 10, 14, 1, 0, tzinfo=tokyo))[0]
    assert local.start == datetime(2026, 10, 13, tzinfo=tokyo)


def test_boost_is_one_inside_and_decays_outside() -> None:
    week = find_time_ranges("last week", NOW)[0]
    inside = datetime(2026, 10, 7, tzinfo=timezone.utc)
    near = datetime(2026, 10, 13, tzinfo=timezone.utc)
    far = datetime(2026, 6, 1, tzinfo=timezone.utc)
    assert time_boost(inside, week) == 1.0
    assert 0.0 < time_boost(far, week) < time_boost(near, week) < 1.0
    assert time_boost(far, week) < 1e-6
    assert time_boost(datetime(2026, 10, 7), week) == 1.0  # naive is UTC


def test_range_contains_and_distance() -> None:
    r = TimeRange(
        datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 1, 2, tzinfo=timezone.utc), "x"
    )
    assert r.contains(datetime(2026, 1, 1, 12, tzinfo=timezone.utc))
    assert not r.contains(r.end)
    assert r.distance(datetime(2026, 1, 4, tzinfo=timezone.utc)) == timedelta(days=2)


def test_strip_removes_date_phrases_only() -> None:
    assert strip_time_phrases("What did I cook last week for dinner?", NOW) == (
        "What did I cook for dinner?"
    )
    assert strip_time_phrases("where do I live", NOW) == "where do I live"


def test_non_text_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        find_time_ranges(None, NOW)  # type: ignore[arg-type]


@given(
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1)),
    st.sampled_from(
        [
            "yesterday", "last week", "in May", "two months ago", "last year", "on March 3",
            "a few days ago", "last weekend", "last Friday", "last summer", "in the winter",
            "the past two weeks", "on February 29", "earlier this month", "10 days ago",
        ]
    ),
)  # fmt: skip
def test_every_range_is_non_empty_and_not_after_the_question(now: datetime, phrase: str) -> None:
    for r in find_time_ranges(f"what happened {phrase}?", now):
        assert r.start < r.end
        assert r.start <= now.replace(tzinfo=timezone.utc) + timedelta(days=1)


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        (datetime(2026, 10, 14, 0, 5, tzinfo=timezone.utc), "today"),
        (datetime(2026, 10, 13, 23, 59, tzinfo=timezone.utc), "yesterday"),
        (datetime(2026, 10, 10, 18, 0, tzinfo=timezone.utc), "4 days ago"),
        (datetime(2026, 9, 20, tzinfo=timezone.utc), "24 days ago (3 weeks)"),
        (datetime(2026, 8, 14, tzinfo=timezone.utc), "2 months ago (61 days)"),
        (datetime(2026, 8, 15, tzinfo=timezone.utc), "1 month ago (60 days)"),
        (datetime(2026, 6, 14, tzinfo=timezone.utc), "4 months ago (122 days)"),
        (datetime(2026, 6, 15, tzinfo=timezone.utc), "3 months ago (121 days)"),
        (datetime(2023, 7, 1, tzinfo=timezone.utc), "3 years ago (39 months)"),
        (datetime(2026, 10, 15, tzinfo=timezone.utc), "after now"),
    ],
)
def test_age_counts_calendar_days_and_months(said: datetime, expected: str) -> None:
    assert age(said, NOW) == expected


def test_recall_answer_gives_each_hit_its_age_from_the_question_time() -> None:
    hit = RecallHit(
        text="I went to the Maundy Thursday service.", score=1.0, role="user", session_id="s1",
        created_at=datetime(2023, 4, 6, 20, 0, tzinfo=timezone.utc), message_id="m1", user_id="u",
    )  # fmt: skip
    asked = datetime(2023, 4, 10, 10, 28, tzinfo=timezone.utc)
    text = format_recall_hits([hit], now=asked)
    assert text.startswith(RECALL_HEADER)
    assert "Now: 2023-04-10 (Mon) 10:28 UTC" in text
    assert "[1] date: 2023-04-06 (Thu) 20:00 UTC, 4 days ago | session: s1" in text
    # A naive "now" is UTC, like every other time the API takes; the clock is the default.
    assert format_recall_hits([hit], now=asked.replace(tzinfo=None)) == text
    assert "years" in format_recall_hits([hit]) and "Now: 2023" not in format_recall_hits([hit])


def test_a_zone_is_counted_in_utc_dates() -> None:
    late = datetime(2026, 10, 13, 23, 30, tzinfo=timezone(timedelta(hours=-5)))  # 04:30 UTC
    assert age(late, NOW) == "today"


def _hit(number: int, when: datetime) -> RecallHit:
    return RecallHit(
        text=f"event {number}", score=1.0, role="user", session_id="s", created_at=when,
        message_id=f"m{number}", user_id="u",
    )  # fmt: skip


def test_timeline_orders_hits_by_date_with_the_days_between() -> None:
    hits = [
        _hit(1, datetime(2023, 3, 25, 9, tzinfo=timezone.utc)),
        _hit(2, datetime(2023, 3, 1, 18, tzinfo=timezone.utc)),
        _hit(3, datetime(2023, 3, 25, 20, tzinfo=timezone.utc)),
        _hit(4, datetime(2023, 3, 26, 8, tzinfo=timezone.utc)),
    ]
    assert timeline(hits) == (
        "[2] 2023-03-01 -> [1] 24 days later -> [3] same day -> [4] 1 day later"
    )
    text = format_recall_hits(hits, now=datetime(2023, 4, 1, tzinfo=timezone.utc))
    assert text.splitlines()[-1] == "In date order: " + timeline(hits)


def test_no_timeline_when_every_hit_is_from_one_day() -> None:
    day = datetime(2023, 3, 25, 9, tzinfo=timezone.utc)
    hits = [_hit(1, day), _hit(2, day + timedelta(hours=3))]
    assert timeline(hits) == ""
    assert "In date order" not in format_recall_hits(hits, now=day)
