"""Dates and timestamps from text, read the way Spark's default parsers read them.

Spark's CSV and JSON readers, given no `dateFormat` / `timestampFormat`, parse with its own
lenient grammar (`stringToDate`, `parseTimestampString`), not ISO 8601: `2024`, `2024-1-2` and
`2024-01-02 3:4` are timestamps; `20240102` and `2024-W01-1`, which Python's `fromisoformat`
takes, are not; digits are ASCII only; a zone may follow the seconds as an offset, `Z`, a
`UTC+1` / `GMT-03:00` form, one of Java's short ids (`PST`) or a region (`Europe/Paris`),
with or without a space. The Arrow readers of files on object stores parse with this module,
so a value reads the same whichever reader a path gets.

Years outside Python's 1-9999, which Spark reads, raise ValueError here (the value is null).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# What Spark trims around a value: ASCII whitespace and control characters, no other.
_TRIMMED = "".join(map(chr, range(33))) + "\x7f"
_DATE = re.compile(r"([+-]?)([0-9]{4,7})(?:-([0-9]{1,2})(?:-([0-9]{1,2})(?:[ T].*)?)?)?", re.S)
_TIME = (
    r"(?P<hour>[0-9]{1,2})(?::(?P<minute>[0-9]{1,2})(?::(?P<second>[0-9]{1,2})"
    r"(?:\.(?P<fraction>[0-9]*))?(?P<zone>[^0-9].*)?)?)?"
)
_DATE_TIME = re.compile(
    r"(?P<sign>[+-]?)(?P<year>[0-9]{4,6})(?:-(?P<month>[0-9]{1,2})"
    rf"(?:-(?P<day>[0-9]{{1,2}})(?:[ T]{_TIME})?)?)?",
    re.S,
)
_JUST_TIME = re.compile(rf"(?:T|(?=[0-9]{{1,2}}:)){_TIME}", re.S)
# Java's Integer.parseInt, which takes any script's decimal digits.
_DAYS = re.compile(r"[+-]?\d+")
_EPOCH_DAY = date(1970, 1, 1)
_GREGORIAN_DAYS = (date(1582, 10, 15) - _EPOCH_DAY).days
_LAST_DAYS = (date.max - _EPOCH_DAY).days
# Java's ZoneOffset.of: +hh, +hhmm, +hh:mm, +hhmmss, +hh:mm:ss (and +h, made +0h first).
_OFFSET = re.compile(r"([+-])([0-9]{2})(?:(:?)([0-9]{2})(?:\3([0-9]{2}))?)?")
_PREFIXED = re.compile(r"(UTC|GMT|UT)([+-].*)?")
# Java's ZoneId.SHORT_IDS, which Spark's getZoneId consults.
_SHORT_IDS = {
    "EST": "-05:00", "MST": "-07:00", "HST": "-10:00", "ACT": "Australia/Darwin",
    "AET": "Australia/Sydney", "AGT": "America/Argentina/Buenos_Aires", "ART": "Africa/Cairo",
    "AST": "America/Anchorage", "BET": "America/Sao_Paulo", "BST": "Asia/Dhaka",
    "CAT": "Africa/Harare", "CNT": "America/St_Johns", "CST": "America/Chicago",
    "CTT": "Asia/Shanghai", "EAT": "Africa/Addis_Ababa", "ECT": "Europe/Paris",
    "IET": "America/Indiana/Indianapolis", "IST": "Asia/Kolkata", "JST": "Asia/Tokyo",
    "MIT": "Pacific/Apia", "NET": "Asia/Yerevan", "NST": "Pacific/Auckland",
    "PLT": "Asia/Karachi", "PNT": "America/Phoenix", "PRT": "America/Puerto_Rico",
    "PST": "America/Los_Angeles", "SST": "Pacific/Guadalcanal", "VST": "Asia/Ho_Chi_Minh",
}  # fmt: skip


class _Stamp(NamedTuple):
    day: date | None  # None: a time of day alone
    time: time
    zone: tzinfo | None


def date_of(token: str) -> date:
    """`token` as Spark reads a date; ValueError when it is not one."""
    match = _DATE.fullmatch(token.strip(_TRIMMED))
    if match is None:
        raise ValueError(token)
    sign, year, month, day = match.groups()
    return date(-int(year) if sign == "-" else int(year), int(month or 1), int(day or 1))


def days_of(token: str) -> date:
    """A JSON date Spark reads as days since the epoch (how Spark 1.5 wrote dates): a whole
    number that is no date; ValueError for anything else, or a day before the Gregorian
    calendar (Spark would rebase it from the Julian one)."""
    if _DAYS.fullmatch(token) is None:
        raise ValueError(token)
    days = int(token)
    if not _GREGORIAN_DAYS <= days <= _LAST_DAYS:  # Spark reads later ones; Python has no date
        raise ValueError(token)
    return _EPOCH_DAY + timedelta(days=days)


def instant_of(kind: str, zone: str, token: str) -> datetime:
    """`token` as Spark reads a `timestamp` (an instant; without a zone of its own, a wall
    time in `zone`) or a `timestamp_ntz` (a wall time: no zone, no time of day alone);
    ValueError when it is not one."""
    stamp = _stamp(token)
    if kind == "timestamp_ntz":
        if stamp.zone is not None or stamp.day is None:
            raise ValueError(token)
        return datetime.combine(stamp.day, stamp.time)
    where = stamp.zone or ZoneInfo(zone)
    day = stamp.day or datetime.now(where).date()  # Spark takes today's date in the zone
    return datetime.combine(day, stamp.time, tzinfo=where)


def _stamp(token: str) -> _Stamp:
    text = token.rstrip(_TRIMMED)
    # A leading T marks a time of day only as the value's very first character.
    match = _JUST_TIME.fullmatch(text) if text.startswith("T") else None
    text = text.lstrip(_TRIMMED)
    day = None
    if match is None:
        match = _DATE_TIME.fullmatch(text)
        if match is not None:
            year = int(match["year"]) * (-1 if match["sign"] == "-" else 1)
            day = date(year, int(match["month"] or 1), int(match["day"] or 1))
        elif not text.startswith("T"):
            match = _JUST_TIME.fullmatch(text)
    if match is None:
        raise ValueError(token)
    fraction = (match["fraction"] or "")[:6]  # Spark truncates past the microsecond
    clock = time(
        int(match["hour"] or 0), int(match["minute"] or 0), int(match["second"] or 0),
        int(fraction.ljust(6, "0")),
    )  # fmt: skip
    zone = None if match["zone"] is None else _zone(match["zone"])
    return _Stamp(day, clock, zone)


def _zone(name: str) -> tzinfo:
    """The zone Spark's `getZoneId` makes of `name`; ValueError when Java knows none."""
    text = name.strip(_TRIMMED)
    # Spark's spellings from before 3.0: +h:mm and +hh:m.
    text = re.sub(r"([+-])([0-9]):", r"\g<1>0\2:", text, count=1)
    text = re.sub(r"([+-])([0-9]{2}):([0-9])$", r"\1\2:0\3", text, count=1)
    text = _SHORT_IDS.get(text, text)
    if text == "Z":
        return timezone.utc
    if text[:1] in "+-":
        return _offset(text, name)
    prefixed = _PREFIXED.fullmatch(text)
    if prefixed is not None:
        return timezone.utc if prefixed[2] is None else _offset(prefixed[2], name)
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as unknown:
        raise ValueError(name) from unknown


def _offset(text: str, name: str) -> timezone:
    match = _OFFSET.fullmatch(text[0] + "0" + text[1:] if len(text) == 2 else text)
    if match is None:
        raise ValueError(name)
    sign, hours, _, minutes, seconds = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes or 0), seconds=int(seconds or 0))
    if delta > timedelta(hours=18) or int(minutes or 0) > 59 or int(seconds or 0) > 59:
        raise ValueError(name)
    return timezone(-delta if sign == "-" else delta)
