"""Dates in a question, resolved against the time it is asked: pure, no I/O.

"What did I cook last week?" asked on 2026-10-14 means the week of 2026-10-05; "in May" means the
most recent May; "two months ago" means around 2026-08-14. :func:`find_time_ranges` turns every
such phrase into a :class:`TimeRange` (``start`` inclusive, ``end`` exclusive, in the question's
time zone; UTC when ``now`` is naive). Recall uses the hull of them (:func:`query_time_range`) as a
soft boost (:func:`time_boost`): a turn said inside the range gains, one said far from it gains
nothing, none is dropped. Approximate phrases ("two months ago", "a few days ago") get a range
as wide as their uncertainty.

Calendar conventions: weeks start on Monday; seasons are the meteorological ones of the northern
hemisphere (spring March-May, summer June-August, autumn September-November, winter December to
February); a month or a date without a year is the most recent one that is not in the future.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

_MONTH_NAMES = (
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
)  # fmt: skip
_MONTH_ABBREVIATIONS = {name[:3]: i + 1 for i, name in enumerate(_MONTH_NAMES)} | {"sept": 9}
_MONTHS = {name: i + 1 for i, name in enumerate(_MONTH_NAMES)} | _MONTH_ABBREVIATIONS
_WEEKDAYS = {
    name: i
    for i, name in enumerate(
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    )
}
_SEASONS = {"spring": 3, "summer": 6, "autumn": 9, "fall": 9, "winter": 12}  # first month
_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "a couple of": 2,
    "a couple": 2, "couple of": 2, "a few": 3, "few": 3, "several": 4,
}  # fmt: skip
_APPROXIMATE = {"a few", "few", "several"}

_NUMBER = r"(?P<n>\d{1,3}|a\s+couple(?:\s+of)?|couple\s+of|a\s+few|few|several|an?|" + (
    "|".join(w for w in _NUMBER_WORDS if " " not in w and w not in {"a", "an", "few"}) + ")"
)
_UNIT = r"(?P<unit>day|week|month|year)s?"
_MONTH = (
    r"(?P<month>january|february|march|april|may|june|july|august|september|october|"
    r"november|december|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)\.?"
)
_DAY = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>(?:19|20)\d\d)"
_WEEKDAY = r"(?P<weekday>monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
_PART = r"(?P<part>early|mid|middle\s+of|late|end\s+of|the\s+end\s+of|beginning\s+of|the\s+beginning\s+of)"


@dataclass(frozen=True)
class TimeRange:
    """When a phrase of a question points to: ``start`` inclusive, ``end`` exclusive."""

    start: datetime
    end: datetime
    phrase: str
    """The words of the question that gave this range ("last week")."""

    def contains(self, when: datetime) -> bool:
        return self.start <= _aware(when) < self.end

    def distance(self, when: datetime) -> timedelta:
        """How far ``when`` lies outside the range (zero inside)."""
        moment = _aware(when)
        if moment < self.start:
            return self.start - moment
        if moment >= self.end:
            return moment - self.end
        return timedelta(0)

    @property
    def length(self) -> timedelta:
        return self.end - self.start


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def _day_start(when: datetime) -> datetime:
    return when.replace(hour=0, minute=0, second=0, microsecond=0)


def _month_start(year: int, month: int, tz: object) -> datetime:
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    return datetime(year, month, 1, tzinfo=tz)  # type: ignore[arg-type]


def _add_months(when: datetime, months: int) -> datetime:
    """``when`` moved by whole months, the day clamped to the target month's length."""
    first = _month_start(when.year, when.month + months, when.tzinfo)
    following = _month_start(first.year, first.month + 1, when.tzinfo)
    last_day = (following - timedelta(days=1)).day
    return when.replace(year=first.year, month=first.month, day=min(when.day, last_day))


def _month_range(year: int, month: int, tz: object) -> tuple[datetime, datetime]:
    start = _month_start(year, month, tz)
    return start, _month_start(year, month + 1, tz)


def _recent_year(month: int, day: int, now: datetime, *, strictly_before: bool = False) -> int:
    """The year of the most recent (month, day) that is not after ``now`` (before, if strict)."""
    if (month, day) < (now.month, now.day) or (
        not strictly_before and (month, day) == (now.month, now.day)
    ):
        return now.year
    return now.year - 1


def _count(words: str) -> tuple[int, bool]:
    """A number of units ("two", "a couple of", "12") and whether it is approximate."""
    key = " ".join(words.lower().split())
    if key.isdigit():
        return int(key), False
    return _NUMBER_WORDS[key], key in _APPROXIMATE


Resolver = Callable[[re.Match[str], datetime], "tuple[datetime, datetime] | None"]


def _iso_date(m: re.Match[str], now: datetime) -> tuple[datetime, datetime] | None:
    try:
        day = datetime(int(m["y"]), int(m["m"]), int(m["d"]), tzinfo=now.tzinfo)
    except ValueError:
        return None
    return day, day + timedelta(days=1)


def _us_date(m: re.Match[str], now: datetime) -> tuple[datetime, datetime] | None:
    try:
        day = datetime(int(m["y"]), int(m["m"]), int(m["d"]), tzinfo=now.tzinfo)
    except ValueError:
        return None
    return day, day + timedelta(days=1)


def _named_day(m: re.Match[str], now: datetime) -> tuple[datetime, datetime] | None:
    word = " ".join(m["word"].lower().split())
    offset = {
        "today": 0, "tonight": 0, "this morning": 0, "this afternoon": 0, "this evening": 0,
        "yesterday": -1, "last night": -1, "the day before yesterday": -2, "tomorrow": 1,
        "the day after tomorrow": 2,
    }[word]  # fmt: skip
    start = _day_start(now) + timedelta(days=offset)
    return start, start + timedelta(days=1)


def _other_day(m: re.Match[str], now: datetime) -> tuple[datetime, datetime] | None:
    today = _day_start(now)
    return today - timedelta(days=7), today


def _ago(m: re.Match[str], now: datetime) -> tuple[datetime, datetime] | None:
    n, approximate = _count(m["n"])
    unit = m["unit"].lower()
    if unit == "day":
        day = _day_start(now) - timedelta(days=n)
        slack = timedelta(days=2 if approximate else (1 if n >= 3 else 0))
        return day - slack, day + timedelta(days=1) + slack
    if unit == "week":
        centre = now - timedelta(weeks=n)
        slack = timedelta(days=7 if approximate else 4)
        return _day_start(centre - slack), _day_start(centre + slack) + timedelta(days=1)
    if unit == "month":
        centre = _add_months(now, -n)
        slack = timedelta(days=30 if approximate else 16)
        return _day_start(centre - slack), _day_start(centre + slack) + timedelta(days=1)
    centre = (
        now.replace(year=now.year - n)
        if not (now.month == 2 and now.day == 29)
        else (now.replace(year=now.year - n, day=28))
    )
    slack = timedelta(days=365 if approximate else 183)
    return _day_start(centre - slack), _day_start(centre + slack) + timedelta(days=1)


def _rolling(m: re.Match[str], now: datetime) -> tuple[datetime, datetime] | None:
    """ "the past two weeks", "in the last 3 days", "over the past month": up to now."""
    n = _count(m["n"])[0] if m["n"] else 1
    unit = m["unit"].lower()
    end = _day_start(now) + timedelta(days=1)
    if unit == "day":
        return end - timedelta(days=n + 1), end
    if unit == "week":
        return end - timedelta(weeks=n, days=1), end
    if unit == "month":
        return _add_months(_day_start(now), -n), end
    return _day_start(now).replace(year=now.year - n, day=min(now.day, 28)), end


def _calendar(m: re.Match[str], now: datetime) -> tuple[datetime, datetime] | None:
    """ "last week", "this month", "next year", "earlier this week": calendar units."""
    which = m["which"].lower().split()[-1]
    shift = {"last": -1, "previous": -1, "this": 0, "next": 1}[which]
    unit = m["unit"].lower()
    if unit == "week":
        monday = _day_start(now) - timedelta(days=now.weekday())
        start = monday + timedelta(weeks=shift)
        end = start + timedelta(weeks=1)
    elif unit == "month":
        start, end = _month_range(now.year, now.month + shift, now.tzinfo)
    else:
        start = datetime(now.year + shift, 1, 1, tzinfo=now.tzinfo)
        end = datetime(now.year + shift + 1, 1, 1, tzinfo=now.tzinfo)
    if m["earlier"]:
        end = min(end, _day_start(now) + timedelta(days=1))
    return start, end


def _weekend(m: re.Match[str], now: datetime) -> tuple[datetime, datetime] | None:
    """Weeks start on Monday, so "last weekend" is always the previous week's Saturday-Sunday;
    "the weekend" is the current one on a Saturday or Sunday, else the one just past."""
    which = m["which"].lower()
    saturday = _day_start(now) + timedelta(days=5 - now.weekday())  # this week's Saturday
    if which == "last" or (which == "the" and now.weekday() < 5):
        saturday -= timedelta(weeks=1)
    elif which == "next":
        saturday += timedelta(weeks=1)
    return saturday, saturday + timedelta(days=2)


def _weekday(m: re.Match[str], now: datetime) -> tuple[datetime, datetime] | None:
    which = (m["which"] or "on").lower()
    target = _WEEKDAYS[m["weekday"].lower()]
    today = _day_start(now)
    back = (now.weekday() - target) % 7
    if which == "next":
        day = today + timedelta(days=(target - now.weekday()) % 7 or 7)
    elif which == "this" and back == 0:
        day = today
    elif which == "this":
        ahead = (target - now.weekday()) % 7
        day = (
            today + timedelta(days=ahead)
            if target > now.weekday()
            else today - timedelta(days=back)
        )
    else:  # "last Monday", "on Monday", "since Monday": the most recent one before today
        day = today - timedelta(days=back or 7)
    start, end = day, day + timedelta(days=1)
    if which == "since":
        end = today + timedelta(days=1)
    return start, end


_PARTS = {"early": (1, 11), "beginning": (1, 11), "mid": (10, 21), "middle": (10, 21),
          "late": (20, 32), "end": (20, 32)}  # fmt: skip


def _month(m: re.Match[str], now: datetime) -> tuple[datetime, datetime] | None:
    month = _MONTHS[m["month"].lower().rstrip(".")]
    which = (m["which"] or "").lower()
    if m["year"]:
        year = int(m["year"])
    elif which == "last":
        year = now.year if month < now.month else now.year - 1
    elif which == "next":
        year = now.year if month > now.month else now.year + 1
    elif which == "this":
        year = now.year
    else:
        year = now.year if month <= now.month else now.year - 1
    start, end = _month_range(year, month, now.tzinfo)
    if m["part"]:
        first, last = _PARTS[_part_key(m["part"])]
        start = start.replace(day=first)
        if last <= 28:
            end = start.replace(day=last)
    if which == "since":
        end = max(end, _day_start(now) + timedelta(days=1))
    return start, end


def _part_key(part: str) -> str:
    words = part.lower().split()
    return next(w for w in words if w in _PARTS)


def _month_day(m: re.Match[str], now: datetime) -> tuple[datetime, datetime] | None:
    month = _MONTHS[m["month"].lower().rstrip(".")]
    day = int(m["day"])
    year = int(m["year"]) if m["year"] else _recent_year(month, day, now)
    try:
        start = datetime(year, month, day, tzinfo=now.tzinfo)
    except ValueError:
        return None
    return start, start + timedelta(days=1)


def _season(m: re.Match[str], now: datetime) -> tuple[datetime, datetime] | None:
    first = _SEASONS[m["season"].lower()]
    which = (m["which"] or "").lower()
    if m["year"]:
        start = datetime(int(m["year"]), first, 1, tzinfo=now.tzinfo)
        return start, _month_start(start.year, first + 3, now.tzinfo)
    seasons = [
        (start, _month_start(year, first + 3, now.tzinfo))
        for year in range(now.year - 2, now.year + 2)
        for start in [datetime(year, first, 1, tzinfo=now.tzinfo)]
    ]
    if which == "last":  # the most recent one that is over
        return max((s for s in seasons if s[1] <= now), key=lambda s: s[0])
    if which == "next":
        return min((s for s in seasons if s[0] > now), key=lambda s: s[0])
    if which == "this":  # the running one, else the nearest
        running = [s for s in seasons if s[0] <= now < s[1]]
        return running[0] if running else min(seasons, key=lambda s: abs(s[0] - now))
    return max((s for s in seasons if s[0] <= now), key=lambda s: s[0])  # the latest begun


def _year(m: re.Match[str], now: datetime) -> tuple[datetime, datetime] | None:
    year = int(m["year"])
    start = datetime(year, 1, 1, tzinfo=now.tzinfo)
    end = datetime(year + 1, 1, 1, tzinfo=now.tzinfo)
    if (m["which"] or "").lower() == "since":
        end = max(end, _day_start(now) + timedelta(days=1))
    return start, end


def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w-])" + text + r"(?![\w-])", re.IGNORECASE)


_RULES: tuple[tuple[re.Pattern[str], Resolver], ...] = (
    (_pattern(r"(?P<y>(?:19|20)\d\d)[-/.](?P<m>[01]?\d)[-/.](?P<d>[0-3]?\d)"), _iso_date),
    (_pattern(r"(?P<m>[01]?\d)/(?P<d>[0-3]?\d)/(?P<y>(?:19|20)\d\d)"), _us_date),
    (
        _pattern(
            r"(?P<word>the\s+day\s+before\s+yesterday|the\s+day\s+after\s+tomorrow|yesterday|"
            r"today|tonight|tomorrow|last\s+night|this\s+(?:morning|afternoon|evening))"
        ),
        _named_day,
    ),
    (_pattern(r"the\s+other\s+day"), _other_day),
    (_pattern(_NUMBER + r"\s+" + _UNIT + r"\s+ago"), _ago),
    (
        _pattern(
            r"(?:in\s+|during\s+|over\s+|within\s+)?the\s+(?:last|past|previous)\s+"
            r"(?:(?P<n>\d{1,3}|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
            r"couple\s+of|few|several)\s+)?" + _UNIT
        ),
        _rolling,
    ),
    (_pattern(r"(?P<n>)past\s+" + _UNIT), _rolling),
    (
        _pattern(
            r"(?P<earlier>earlier\s+)?(?P<which>last|previous|this|next)\s+"
            r"(?P<unit>week|month|year)"
        ),
        _calendar,
    ),
    (_pattern(r"(?P<which>last|this|next|the)\s+weekend"), _weekend),
    (_pattern(r"(?:(?P<which>last|this|next|on|since|past)\s+)" + _WEEKDAY), _weekday),
    (_pattern(r"(?P<which>)" + _WEEKDAY + r"(?=\s+(?:morning|afternoon|evening|night))"), _weekday),
    (
        _pattern(
            r"(?:on\s+)?(?:the\s+)?"
            + _DAY
            + r"\s+(?:of\s+)?"
            + _MONTH
            + r"(?:,?\s+"
            + _YEAR
            + r")?"
        ),
        _month_day,
    ),
    (
        _pattern(
            r"(?:on\s+)?"
            + _MONTH
            + r"\s+(?:the\s+)?"
            + _DAY
            + r"(?!\s*(?:am|pm|:))"
            + r"(?:,?\s+"
            + _YEAR
            + r")?"
        ),
        _month_day,
    ),
    (
        _pattern(
            r"(?:(?P<which>in|during|last|this|next|since|back\s+in|of|by)\s+)?"
            r"(?:" + _PART + r"\s+)?" + _MONTH + r"(?:,?\s+(?:of\s+)?" + _YEAR + r")?"
        ),
        _month,
    ),
    (
        _pattern(
            r"(?:(?P<which>in|during|last|this|next|since|over)\s+)?(?:the\s+)?"
            r"(?P<season>spring|summer|autumn|fall|winter)(?:\s+(?:of\s+)?" + _YEAR + r")?"
        ),
        _season,
    ),
    (_pattern(r"(?P<which>in|during|since|back\s+in|of|by|from)\s+" + _YEAR), _year),
)


def _accept(rule: Resolver, m: re.Match[str]) -> bool:
    """Month words that are ordinary words too ("may", "march on", "jan"): bare, they need a
    cue (a preposition, a part of the month, a year); "March" passes when capitalized."""
    if rule is _month:
        word = m["month"].lower().rstrip(".")
        cued = bool(m["which"] or m["part"] or m["year"])
        if word in {"may", "march"}:  # or capitalized mid-sentence: "between March and May"
            before = m.string[: m.start()]
            return cued or (
                m["month"][0].isupper() and re.search(r"[a-z,]\s+$", before) is not None
            )
        if word in _MONTH_ABBREVIATIONS or word == "sept":
            return cued
        return True
    if rule is _season:
        return bool(m["which"] or m["year"])
    return True


def _matches(text: str, now: datetime) -> Iterator[tuple[int, int, TimeRange]]:
    for pattern, rule in _RULES:
        for m in pattern.finditer(text):
            if not _accept(rule, m):
                continue
            found = rule(m, now)
            if found is not None:
                start, end = found
                yield m.start(), m.end(), TimeRange(start, end, m.group(0))


def find_time_ranges(text: str, now: datetime) -> list[TimeRange]:
    """Every date phrase of ``text`` resolved against ``now``, in the order they appear.

    Where two phrases overlap ("on March 3" and "March"), the longer one wins.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    moment = _aware(now)
    taken: list[tuple[int, int, TimeRange]] = []
    for start, end, found in sorted(
        _matches(text, moment), key=lambda item: (-(item[1] - item[0]), item[0])
    ):
        if all(end <= s or start >= e for s, e, _ in taken):
            taken.append((start, end, found))
    return [found for _, _, found in sorted(taken, key=lambda item: item[0])]


def query_time_range(text: str, now: datetime) -> TimeRange | None:
    """The span of all the date phrases of a question ("between March and May": March to May)."""
    ranges = find_time_ranges(text, now)
    if not ranges:
        return None
    return TimeRange(
        min(r.start for r in ranges),
        max(r.end for r in ranges),
        " / ".join(r.phrase for r in ranges),
    )


def time_boost(when: datetime, time_range: TimeRange) -> float:
    """How well ``when`` fits the range, in [0, 1]: 1 inside, then decaying with the distance
    in units of the range's own length (at least a day): half a length away gives ~0.37."""
    scale = max(time_range.length, timedelta(days=1)).total_seconds() / 2
    return math.exp(-time_range.distance(when).total_seconds() / scale)


def strip_time_phrases(text: str, now: datetime) -> str:
    """``text`` without its date phrases (they are no words to match a turn by)."""
    moment = _aware(now)
    spans = sorted(((s, e) for s, e, _ in _matches(text, moment)), key=lambda item: item[0])
    out, last = [], 0
    for start, end in spans:
        if start >= last:
            out.append(text[last:start])
            last = end
        elif end > last:
            last = end
    out.append(text[last:])
    return " ".join("".join(out).split())


__all__ = [
    "TimeRange",
    "find_time_ranges",
    "query_time_range",
    "strip_time_phrases",
    "time_boost",
]
