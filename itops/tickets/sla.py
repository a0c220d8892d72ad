"""The SLA clock: due dates that count business time only.

A ticket's SLA is a number of business minutes. The clock runs only inside the helpdesk's opening
windows (ITOPS_BUSINESS_HOURS) on business days (ITOPS_BUSINESS_DAYS) that are not holidays
(ITOPS_HOLIDAYS), read on the local wall clock of ITOPS_TIMEZONE. Everything the clock returns is
an aware UTC datetime, because that is what the database stores and what compares safely.

Rules, chosen so that the arithmetic stays exact and the results are unsurprising:

* Each window of each business day is one interval of real (UTC) time. It opens when the local
  wall clock first reads its start and closes when the wall clock first reads its end. So a time
  skipped when clocks go forward maps to the instant of the jump (a 02:30 opening on the spring
  change in Berlin opens at 03:00 summer time), and a time repeated when clocks go back counts at
  its first occurrence. Business time is real elapsed time inside these intervals, so a window
  02:00-04:00 lasts 60 minutes on the spring change and 180 on the autumn one.
* Intervals are half-open: 17:00 is already closed. But when the minutes run out exactly at a
  closing time, the due time is that closing time (Friday 16:00 + 60 minutes is Friday 17:00,
  not Monday 09:00).
* A clock started outside business hours starts at the next opening; so adding 0 minutes gives
  the next opening (or the start itself when it is inside business hours).
* Time is counted exactly (to the microsecond); business_minutes_between floors to whole minutes.

Standard library only: the clock is used by views, the API and background jobs alike.
"""
from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
"""Index == date.weekday(): 0 is Monday. Settings accept the full name or its first three letters."""

END_OF_DAY = time(0)
"""As a window's end, midnight at the end of the day ("24:00"); a window never ends at its own 00:00."""

_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)
_MINUTE = timedelta(minutes=1)
_ZERO = timedelta(0)
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")

Window = tuple[time, time]


@dataclass(frozen=True)
class BusinessCalendar:
    """When the SLA clock runs: opening windows on business days, minus holidays, in one zone."""

    tz: ZoneInfo
    days: frozenset[int]  # date.weekday() numbers, 0 = Monday
    windows: tuple[Window, ...]  # (start, end) local times, sorted, non-overlapping; end 00:00 = 24:00
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        # Checked here as well as in parse(): a calendar without any business time would make
        # add_business_minutes search forever.
        _check_days(self.days)
        _check_windows(self.windows)

    @classmethod
    def parse(cls, timezone: str = "UTC", days: str = "mon-fri", hours: str = "09:00-17:00",
              holidays: str = "") -> BusinessCalendar:
        """Build a calendar from the setting strings; ValueError says what is wrong and how to write it.

        days: "mon-fri", "mon,tue,thu", "sun-thu", "fri-mon" (ranges wrap past Sunday), or a mix.
        hours: "09:00-17:00", "08:00-12:00,13:00-17:00"; "00:00-24:00" is all day. Ranges cannot
        cross midnight (write "22:00-24:00,00:00-06:00"); touching ranges are fine.
        holidays: comma-separated ISO dates, "2025-12-25,2025-12-26".
        """
        return cls(_parse_timezone(timezone), _parse_days(days), _parse_hours(hours), _parse_holidays(holidays))

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> BusinessCalendar:
        """The helpdesk calendar from the ITOPS_* settings (a Flask config or any mapping).

        Missing keys get the same defaults as itops.config; errors are prefixed with the key name
        so an operator knows which variable to fix. Parsed once per distinct settings: the helpdesk
        asks for the calendar at every ticket it files.
        """
        return _calendar_from_settings(*(None if config.get(key) is None else str(config.get(key))
                                         for key in CALENDAR_SETTINGS))

    @classmethod
    def always(cls) -> BusinessCalendar:
        """A 24/7 calendar in UTC: business time is plain elapsed time (tests, "no business hours")."""
        return cls(ZoneInfo("UTC"), frozenset(range(7)), ((time(0), END_OF_DAY),))

    # -- the calendar as UTC intervals ---------------------------------------------------------

    def _opening_hours(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        """The UTC intervals during which the clock runs on the local date `day`, in order."""
        if day.weekday() not in self.days or day in self.holidays:
            return
        for start, end in self.windows:
            opens = _first_instant(self.tz, day, start)
            closes = _first_instant(self.tz, day + _DAY, time(0)) if end == END_OF_DAY else \
                _first_instant(self.tz, day, end)
            if closes > opens:  # a window wholly inside a skipped hour has no time at all
                yield opens, closes

    def _midnight(self, day: date) -> datetime:
        """When `day` begins: no interval of an earlier day ends after it, none of `day` opens before it."""
        return _first_instant(self.tz, day, time(0))

    def _nominal_week(self) -> timedelta:
        """Business time in a week without holidays or clock changes."""
        return len(self.days) * sum((_length(window) for window in self.windows), _ZERO)

    def _is_regular_week(self, day: date) -> bool:
        """True when the seven days from `day` hold exactly _nominal_week() of business time.

        That is so when none of them is a holiday and all eight local midnights exist once, with
        one and the same UTC offset (both folds agree: a midnight inside a skipped or repeated
        stretch, as in Toronto in 1919, does not count as regular). Checking midnights is enough
        because no zone in the tz database changes its offset twice within one day.
        """
        if any(day + i * _DAY in self.holidays for i in range(7)):
            return False
        midnights = [datetime.combine(day + i * _DAY, time(0)) for i in range(8)]
        offsets = {self.tz.utcoffset(midnight.replace(fold=fold)) for midnight in midnights for fold in (0, 1)}
        return len(offsets) == 1


CALENDAR_SETTINGS = ("ITOPS_TIMEZONE", "ITOPS_BUSINESS_DAYS", "ITOPS_BUSINESS_HOURS", "ITOPS_HOLIDAYS")


@functools.lru_cache(maxsize=32)
def _calendar_from_settings(timezone: str | None, days: str | None, hours: str | None,
                            holidays: str | None) -> BusinessCalendar:
    def read(key: str, value: str | None, default: str, parser):
        try:
            return parser(default if value is None else value)
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None

    return BusinessCalendar(
        read("ITOPS_TIMEZONE", timezone, "UTC", _parse_timezone),
        read("ITOPS_BUSINESS_DAYS", days, "mon-fri", _parse_days),
        read("ITOPS_BUSINESS_HOURS", hours, "09:00-17:00", _parse_hours),
        read("ITOPS_HOLIDAYS", holidays, "", _parse_holidays),
    )


def add_business_minutes(calendar: BusinessCalendar, start: datetime, minutes: int) -> datetime:
    """The aware UTC instant at which `minutes` business minutes have elapsed after `start`.

    `start` is an aware datetime in any zone; outside business hours the clock starts at the next
    opening. Steps window by window and skips whole regular weeks, so large values are cheap.
    """
    if minutes < 0:
        raise ValueError(f"minutes must not be negative, not {minutes}")
    return _add_business_time(calendar, start, minutes * _MINUTE)


def business_minutes_between(calendar: BusinessCalendar, start: datetime, end: datetime) -> int:
    """Whole business minutes (floored) from `start` to `end`; 0 when end <= start.

    The inverse of add_business_minutes: business_minutes_between(s, add_business_minutes(s, m)) == m
    for every aware s, inside business hours or not.
    """
    return _business_time_between(calendar, start, end) // _MINUTE


def due_after_pause(calendar: BusinessCalendar, due: datetime, paused_at: datetime,
                    resumed_at: datetime) -> datetime:
    """The due time once a clock paused at `paused_at` (pending on the requester) resumes at `resumed_at`.

    Rule: remaining = business time from paused_at to due (0 if due <= paused_at); the new due time
    is remaining business time after resumed_at, or `due` unchanged when nothing remained. So:

    * the due time moves back by exactly the business time that elapsed during the pause; nights,
      weekends and holidays inside the pause move it by nothing, as they would not have counted;
    * a ticket already breached when paused (due <= paused_at) stays breached: pausing cannot
      rescue an SLA that was missed before the requester was asked for anything;
    * resuming outside business hours restarts the clock at the next opening.

    The remaining time is carried exactly, not floored to minutes: flooring would let a pause of a
    few seconds move the due time earlier.
    """
    due, paused_at, resumed_at = (_as_utc(due, "due"), _as_utc(paused_at, "paused_at"),
                                  _as_utc(resumed_at, "resumed_at"))
    if resumed_at < paused_at:
        raise ValueError(f"resumed_at ({resumed_at.isoformat()}) is before paused_at ({paused_at.isoformat()})")
    remaining = _business_time_between(calendar, paused_at, due)
    if remaining <= _ZERO:
        return due
    return _add_business_time(calendar, resumed_at, remaining)


@dataclass(frozen=True)
class SlaClock:
    """The SLA operations bound to one calendar, so callers build it once from the app config."""

    calendar: BusinessCalendar

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> SlaClock:
        return cls(BusinessCalendar.from_config(config))

    def due(self, start: datetime, minutes: int) -> datetime:
        """When an SLA of `minutes` business minutes started at `start` falls due."""
        return add_business_minutes(self.calendar, start, minutes)

    def elapsed(self, start: datetime, end: datetime) -> int:
        """Business minutes spent between two instants."""
        return business_minutes_between(self.calendar, start, end)

    def due_after_pause(self, due: datetime, paused_at: datetime, resumed_at: datetime) -> datetime:
        """See the module-level due_after_pause for the rule."""
        return due_after_pause(self.calendar, due, paused_at, resumed_at)


# -- exact arithmetic on timedelta -----------------------------------------------------------------

def _add_business_time(calendar: BusinessCalendar, start: datetime, amount: timedelta) -> datetime:
    start = _as_utc(start, "start")
    week = calendar._nominal_week()
    day = start.astimezone(calendar.tz).date()
    while True:
        # "> week", not ">=": time that runs out exactly at a closing time must end there.
        if amount > week and calendar._midnight(day) >= start and calendar._is_regular_week(day):
            amount -= week
            day += _WEEK
            continue
        for opens, closes in calendar._opening_hours(day):
            opens = max(opens, start)
            if closes <= opens:
                continue
            if amount <= closes - opens:
                return opens + amount
            amount -= closes - opens
        day += _DAY


def _business_time_between(calendar: BusinessCalendar, start: datetime, end: datetime) -> timedelta:
    start, end = _as_utc(start, "start"), _as_utc(end, "end")
    total = _ZERO
    week = calendar._nominal_week()
    day = start.astimezone(calendar.tz).date()
    while (midnight := calendar._midnight(day)) < end:
        # In a regular week the next week's midnight is exactly _WEEK after this one.
        if midnight >= start and end - midnight >= _WEEK and calendar._is_regular_week(day):
            total += week
            day += _WEEK
            continue
        for opens, closes in calendar._opening_hours(day):
            overlap = min(closes, end) - max(opens, start)
            if overlap > _ZERO:
                total += overlap
        day += _DAY
    return total


def _first_instant(tz: ZoneInfo, day: date, wall: time) -> datetime:
    """The first UTC instant at which the local clock in `tz` reads `wall` on `day`, or later.

    A repeated wall time (clocks going back) gives its first occurrence, which is what fold=0
    means. A skipped one (clocks going forward) gives the instant of the jump: fold=0 reads it with
    the old offset (an instant after the jump), fold=1 with the new one (an instant before it), and
    the jump lies between; bisecting on whole seconds finds it exactly, as tz transitions fall on
    whole seconds. That happens at most twice a year, so its cost does not matter.
    """
    local = datetime.combine(day, wall, tzinfo=tz)
    after = local.astimezone(timezone.utc)
    skipped = local.utcoffset() < local.replace(fold=1).utcoffset()
    if not skipped:
        return after
    naive = local.replace(tzinfo=None)
    low = math.floor(local.replace(fold=1).astimezone(timezone.utc).timestamp())  # reads before `wall`
    high = math.ceil(after.timestamp())  # reads after `wall`
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, tz).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, timezone.utc)


def _as_utc(moment: datetime, name: str) -> datetime:
    # A naive datetime could be server time or UTC; guessing would silently shift every due date.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, not naive {moment.isoformat()}")
    return moment.astimezone(timezone.utc)


def _length(window: Window) -> timedelta:
    start, end = window
    return (_DAY if end == END_OF_DAY else _since_midnight(end)) - _since_midnight(start)


def _since_midnight(moment: time) -> timedelta:
    return timedelta(hours=moment.hour, minutes=moment.minute, seconds=moment.second,
                     microseconds=moment.microsecond)


def _format_window(window: Window) -> str:
    start, end = window
    return f"{start:%H:%M}-{'24:00' if end == END_OF_DAY else format(end, '%H:%M')}"


# -- settings ----------------------------------------------------------------------------------

def _check_days(days: frozenset[int]) -> None:
    if not days:
        raise ValueError("no business days given; write e.g. 'mon-fri' (or 'mon-sun' for every day)")
    if not days <= set(range(7)):
        raise ValueError(f"business days must be weekday numbers 0 (Monday) to 6 (Sunday), not {sorted(days)}")


def _check_windows(windows: tuple[Window, ...]) -> None:
    if not windows:
        raise ValueError("no business hours given; write e.g. '09:00-17:00' (or '00:00-24:00' for all day)")
    previous: Window | None = None
    for window in windows:
        if _length(window) <= _ZERO:
            raise ValueError(f"business hours {_format_window(window)} are empty or end before they start; a range "
                             f"cannot cross midnight, so split it, e.g. '22:00-24:00,00:00-06:00'")
        if previous is not None:
            if window[0] < previous[0]:
                raise ValueError("business hours must be sorted by start time")
            if _since_midnight(window[0]) < _since_midnight(previous[0]) + _length(previous):
                raise ValueError(f"business hours {_format_window(previous)} and {_format_window(window)} overlap")
        previous = window


def _parse_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as 'Europe/Berlin' or 'UTC' "
                         f"(names are case-sensitive)") from None


def _parse_weekday(token: str, text: str) -> int:
    word = token.strip().lower()
    for number, name in enumerate(WEEKDAYS):
        if word in (name, name[:3]):
            return number
    raise ValueError(f"unknown weekday {token.strip()!r} in business days {text!r}; use mon, tue, wed, thu, "
                     f"fri, sat, sun, in lists ('mon,tue,thu') or ranges ('mon-fri', 'sun-thu')")


def _parse_days(text: str) -> frozenset[int]:
    days: set[int] = set()
    for item in filter(None, (part.strip() for part in text.split(","))):
        first, dash, last = item.partition("-")
        begin = _parse_weekday(first, text)
        end = _parse_weekday(last, text) if dash else begin
        days.update((begin + offset) % 7 for offset in range((end - begin) % 7 + 1))  # wraps past Sunday
    result = frozenset(days)
    _check_days(result)
    return result


def _parse_clock(token: str, item: str, *, is_end: bool) -> time:
    match = _CLOCK.fullmatch(token.strip())
    if match:
        hour, minute = int(match[1]), int(match[2])
        if (hour, minute) == (24, 0):
            if is_end:
                return END_OF_DAY
            raise ValueError(f"business hours {item!r} start at 24:00; 24:00 can only end a range")
        if hour < 24 and minute < 60:
            return time(hour, minute)
    raise ValueError(f"bad time {token.strip()!r} in business hours {item!r}; write HH:MM-HH:MM "
                     f"with 00:00 to 23:59 (24:00 as an end), e.g. '09:00-17:00'")


def _parse_hours(text: str) -> tuple[Window, ...]:
    windows: list[Window] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        start, dash, end = item.partition("-")
        if not dash:
            raise ValueError(f"business hours {item!r} must be a range HH:MM-HH:MM, e.g. '09:00-17:00'")
        windows.append((_parse_clock(start, item, is_end=False), _parse_clock(end, item, is_end=True)))
    windows.sort(key=lambda window: window[0])
    result = tuple(windows)
    _check_windows(result)
    return result


def _parse_holidays(text: str) -> frozenset[date]:
    holidays: set[date] = set()
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            holidays.add(date.fromisoformat(item))
        except ValueError:
            raise ValueError(f"bad holiday date {item!r}; write ISO dates separated by commas, "
                             f"e.g. '2025-12-25,2025-12-26'") from None
    return frozenset(holidays)
