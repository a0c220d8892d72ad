"""The SLA clock: business-time arithmetic on real tz data, across weekends, holidays and DST."""
from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from itops.tickets.sla import (
    BusinessCalendar,
    SlaClock,
    add_business_minutes,
    business_minutes_between,
    due_after_pause,
)

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = BusinessCalendar.parse()  # UTC, mon-fri, 09:00-17:00
BERLIN_OFFICE = BusinessCalendar.parse(timezone="Europe/Berlin")


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)


def berlin(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=BERLIN)


# June 2025: Monday 2, Wednesday 4, Friday 6, Monday 9.

def test_inside_hours_on_a_weekday():
    due = add_business_minutes(OFFICE, utc(2025, 6, 4, 10, 0), 90)
    assert due == utc(2025, 6, 4, 11, 30)
    assert due.tzinfo is UTC


def test_start_in_any_zone_result_in_utc():
    assert add_business_minutes(OFFICE, berlin(2025, 6, 4, 12, 0), 30) == utc(2025, 6, 4, 10, 30)


@pytest.mark.parametrize(("start", "minutes", "due"), [
    (utc(2025, 6, 4, 7, 0), 30, utc(2025, 6, 4, 9, 30)),      # before opening
    (utc(2025, 6, 4, 18, 0), 30, utc(2025, 6, 5, 9, 30)),     # after closing
    (utc(2025, 6, 6, 18, 0), 30, utc(2025, 6, 9, 9, 30)),     # Friday evening -> Monday
    (utc(2025, 6, 7, 11, 0), 30, utc(2025, 6, 9, 9, 30)),     # Saturday
    (utc(2025, 6, 6, 17, 0), 30, utc(2025, 6, 9, 9, 30)),     # exactly at closing: already closed
    (utc(2025, 6, 6, 16, 30), 60, utc(2025, 6, 9, 9, 30)),    # runs over the weekend
], ids=["before-opening", "after-closing", "friday-evening", "saturday", "at-closing", "over-weekend"])
def test_clock_starts_at_the_next_opening(start, minutes, due):
    assert add_business_minutes(OFFICE, start, minutes) == due


def test_minutes_running_out_at_closing_end_there_not_at_the_next_opening():
    assert add_business_minutes(OFFICE, utc(2025, 6, 6, 16, 0), 60) == utc(2025, 6, 6, 17, 0)
    assert add_business_minutes(OFFICE, utc(2025, 6, 6, 16, 0), 61) == utc(2025, 6, 9, 9, 1)


def test_zero_minutes_is_the_start_or_the_next_opening():
    assert add_business_minutes(OFFICE, utc(2025, 6, 4, 10, 0), 0) == utc(2025, 6, 4, 10, 0)
    assert add_business_minutes(OFFICE, utc(2025, 6, 6, 20, 0), 0) == utc(2025, 6, 9, 9, 0)


def test_holidays_are_skipped():
    calendar = BusinessCalendar.parse(holidays="2025-06-05, 2025-06-09")  # Thursday, next Monday
    assert add_business_minutes(calendar, utc(2025, 6, 4, 16, 0), 120) == utc(2025, 6, 6, 10, 0)
    assert add_business_minutes(calendar, utc(2025, 6, 6, 16, 30), 60) == utc(2025, 6, 10, 9, 30)
    assert business_minutes_between(calendar, utc(2025, 6, 4, 9, 0), utc(2025, 6, 11, 9, 0)) == 3 * 480


def test_two_windows_with_a_lunch_break():
    calendar = BusinessCalendar.parse(hours="13:00-17:00,08:00-12:00")  # order does not matter
    assert calendar.windows == ((time(8), time(12)), (time(13), time(17)))
    assert add_business_minutes(calendar, utc(2025, 6, 4, 11, 30), 60) == utc(2025, 6, 4, 13, 30)
    assert add_business_minutes(calendar, utc(2025, 6, 4, 12, 15), 10) == utc(2025, 6, 4, 13, 10)
    assert add_business_minutes(calendar, utc(2025, 6, 4, 11, 0), 60) == utc(2025, 6, 4, 12, 0)
    assert add_business_minutes(calendar, utc(2025, 6, 4, 16, 0), 120) == utc(2025, 6, 5, 9, 0)
    assert business_minutes_between(calendar, utc(2025, 6, 4, 11, 0), utc(2025, 6, 4, 14, 0)) == 120


def test_always_is_plain_elapsed_time():
    calendar = BusinessCalendar.always()
    start = utc(2025, 6, 7, 3, 17, 42)  # a Saturday night
    assert add_business_minutes(calendar, start, 10_000) == start + timedelta(minutes=10_000)
    assert business_minutes_between(calendar, start, start + timedelta(minutes=90, seconds=59)) == 90


def test_between_floors_and_is_zero_when_end_is_not_after_start():
    start = utc(2025, 6, 4, 10, 0)
    assert business_minutes_between(OFFICE, start, utc(2025, 6, 4, 10, 59, 59)) == 59
    assert business_minutes_between(OFFICE, start, start) == 0
    assert business_minutes_between(OFFICE, start, utc(2025, 6, 3, 10, 0)) == 0
    assert business_minutes_between(OFFICE, utc(2025, 6, 6, 16, 0), utc(2025, 6, 9, 10, 0)) == 120


# -- daylight saving time (Europe/Berlin changes on the last Sundays of March and October) ----------

def test_berlin_friday_to_monday_across_spring_forward():
    start = berlin(2025, 3, 28, 16, 0)  # CET, UTC+1; clocks go forward on Sunday 30 March
    due = add_business_minutes(BERLIN_OFFICE, start, 120)
    assert due == utc(2025, 3, 31, 8, 0)
    assert due.astimezone(BERLIN) == berlin(2025, 3, 31, 10, 0)
    assert start.utcoffset() == timedelta(hours=1)
    assert due.astimezone(BERLIN).utcoffset() == timedelta(hours=2)


def test_berlin_friday_to_monday_across_fall_back():
    start = berlin(2025, 10, 24, 16, 0)  # CEST, UTC+2; clocks go back on Sunday 26 October
    due = add_business_minutes(BERLIN_OFFICE, start, 120)
    assert due == utc(2025, 10, 27, 9, 0)
    assert due.astimezone(BERLIN) == berlin(2025, 10, 27, 10, 0)
    assert start.utcoffset() == timedelta(hours=2)
    assert due.astimezone(BERLIN).utcoffset() == timedelta(hours=1)


def test_window_in_the_skipped_hour_opens_at_the_first_valid_instant():
    nightly = BusinessCalendar.parse(timezone="Europe/Berlin", days="mon-sun", hours="02:00-04:00")
    # 02:00-03:00 does not exist on 30 March 2025: the window opens at 03:00 CEST = 01:00 UTC.
    assert add_business_minutes(nightly, berlin(2025, 3, 29, 12, 0), 0) == utc(2025, 3, 30, 1, 0)
    assert add_business_minutes(nightly, berlin(2025, 3, 29, 12, 0), 30) == utc(2025, 3, 30, 1, 30)
    assert add_business_minutes(nightly, berlin(2025, 3, 29, 12, 0), 61) == utc(2025, 3, 31, 0, 1)

    def minutes_on(day: date) -> int:
        midnight = datetime.combine(day, time(0), tzinfo=BERLIN)
        return business_minutes_between(nightly, midnight, midnight + timedelta(hours=23))

    assert minutes_on(date(2025, 3, 29)) == 120
    assert minutes_on(date(2025, 3, 30)) == 60   # the hour that never happened is not counted
    assert minutes_on(date(2025, 10, 26)) == 180  # 02:00-03:00 happens twice, all of it counts

    later = BusinessCalendar.parse(timezone="Europe/Berlin", days="mon-sun", hours="02:30-04:00")
    assert add_business_minutes(later, berlin(2025, 3, 29, 12, 0), 0) == utc(2025, 3, 30, 1, 0)
    assert add_business_minutes(later, berlin(2025, 3, 29, 12, 0), 60) == utc(2025, 3, 30, 2, 0)


# -- large values ----------------------------------------------------------------------------------

def test_sixty_business_hours():
    # Mon 2 June 09:00: 40 h that week, 16 h Mon-Tue, 4 h on Wednesday 11 June.
    assert add_business_minutes(OFFICE, utc(2025, 6, 2, 9, 0), 60 * 60) == utc(2025, 6, 11, 13, 0)


def test_hundreds_of_weeks_are_skipped_not_walked():
    weeks = 500
    due = add_business_minutes(OFFICE, utc(2025, 6, 2, 9, 0), weeks * 2400 + 2 * 480 + 30)
    assert due == utc(2025, 6, 4, 9, 30) + timedelta(weeks=weeks)
    assert business_minutes_between(OFFICE, utc(2025, 6, 2, 9, 0), due) == weeks * 2400 + 2 * 480 + 30


def test_a_weeks_worth_from_the_weekend_ends_on_friday_at_closing():
    assert add_business_minutes(OFFICE, utc(2025, 6, 1, 12, 0), 5 * 480) == utc(2025, 6, 6, 17, 0)
    assert add_business_minutes(OFFICE, utc(2025, 6, 1, 12, 0), 10 * 480) == utc(2025, 6, 13, 17, 0)


def test_weeks_with_a_clock_change_are_not_skipped_at_their_nominal_length():
    # Open around the clock on Berlin's wall clock: business time is real elapsed time, so the
    # week of the spring change is an hour short and the autumn one an hour long.
    around_the_clock = BusinessCalendar.parse(timezone="Europe/Berlin", days="mon-sun", hours="00:00-24:00")
    # Toronto, spring 1919: clocks jumped from 23:30 to 00:30, so that midnight never happened.
    toronto_1919 = BusinessCalendar.parse(timezone="America/Toronto", days="mon-sun", hours="00:00-24:00")
    toronto = ZoneInfo("America/Toronto")
    for calendar, start in ((around_the_clock, berlin(2025, 3, 1, 10, 0)),
                            (toronto_1919, datetime(1919, 3, 20, 10, 0, tzinfo=toronto)),
                            (toronto_1919, datetime(1919, 3, 23, 10, 0, tzinfo=toronto))):
        for minutes in (20_000, 40_000, 400_000):
            due = add_business_minutes(calendar, start, minutes)
            assert due == start.astimezone(UTC) + timedelta(minutes=minutes)
            assert business_minutes_between(calendar, start, due) == minutes


def _minute_by_minute(calendar: BusinessCalendar, start: datetime, minutes: int) -> datetime:
    """Reference: walk the wall clock minute by minute (valid for windows clear of DST changes)."""
    moment, counted = start, 0
    while counted < minutes:
        local = moment.astimezone(calendar.tz)
        if (local.weekday() in calendar.days and local.date() not in calendar.holidays
                and any(begin <= local.time() < end for begin, end in calendar.windows)):
            counted += 1
        moment += timedelta(minutes=1)
    return moment


def test_large_values_match_a_minute_by_minute_walk_across_dst_and_holidays():
    calendar = BusinessCalendar.parse(timezone="Europe/Berlin", hours="08:00-12:00,13:00-17:30",
                                      holidays="2025-03-31,2025-04-18,2025-04-21,2025-10-03,2025-10-31")
    rng = random.Random(20250330)
    for start_day in (date(2025, 3, 14), date(2025, 10, 10)):
        for _ in range(3):
            start = datetime.combine(start_day, time(rng.randrange(24), rng.randrange(60)), tzinfo=BERLIN)
            start += timedelta(days=rng.randrange(10))
            minutes = rng.randrange(2_000, 10_001)
            expected = _minute_by_minute(calendar, start.astimezone(UTC), minutes)
            assert add_business_minutes(calendar, start, minutes) == expected, (start, minutes)


def test_nightly_window_over_the_changed_hours_matches_a_minute_by_minute_walk():
    # 02:00-04:00 holds the change itself: 60 minutes on the spring day, 180 on the autumn one.
    nightly = BusinessCalendar.parse(timezone="Europe/Berlin", days="mon-sun", hours="02:00-04:00")
    for start in (berlin(2025, 3, 8, 12, 0), berlin(2025, 10, 4, 3, 15)):
        expected = _minute_by_minute(nightly, start.astimezone(UTC), 4_000)
        assert add_business_minutes(nightly, start, 4_000) == expected


# -- the round trip ------------------------------------------------------------------------------

ROUND_TRIP_CALENDARS = [
    OFFICE,
    BusinessCalendar.parse(timezone="Europe/Berlin", holidays="2025-12-25,2025-12-26,2026-01-01"),
    BusinessCalendar.parse(timezone="America/New_York", days="sun-thu", hours="08:00-12:00,13:00-17:00"),
    BusinessCalendar.parse(timezone="Europe/Berlin", days="mon-sun", hours="02:00-04:00"),
    BusinessCalendar.parse(timezone="Australia/Lord_Howe", days="mon-sat", hours="01:00-03:00,22:00-24:00"),
    BusinessCalendar.parse(timezone="Asia/Kolkata", days="mon,tue,thu", hours="00:00-24:00"),
    BusinessCalendar.always(),
]


@pytest.mark.parametrize("calendar", ROUND_TRIP_CALENDARS, ids=lambda calendar: calendar.tz.key)
def test_between_inverts_add(calendar):
    rng = random.Random(f"sla-{calendar.tz.key}-{sorted(calendar.days)}")
    span = int((utc(2027, 1, 1) - utc(2024, 1, 1)).total_seconds())
    for _ in range(60):
        start = utc(2024, 1, 1) + timedelta(seconds=rng.randrange(span))
        minutes = rng.choice((rng.randrange(1, 120), rng.randrange(1, 3_000), rng.randrange(1, 30_000)))
        due = add_business_minutes(calendar, start, minutes)
        assert due > start
        assert business_minutes_between(calendar, start, due) == minutes, (start, minutes)
        # ...and `due` is the earliest such instant.
        assert business_minutes_between(calendar, start, due - timedelta(minutes=1)) == minutes - 1


# -- pausing -------------------------------------------------------------------------------------

def test_pause_pushes_the_due_time_back_by_the_business_time_paused():
    due = add_business_minutes(OFFICE, utc(2025, 6, 4, 10, 0), 480)
    assert due == utc(2025, 6, 5, 10, 0)
    paused, resumed = utc(2025, 6, 4, 15, 0), utc(2025, 6, 4, 16, 30)
    new_due = due_after_pause(OFFICE, due, paused, resumed)
    assert new_due == utc(2025, 6, 5, 11, 30)
    assert business_minutes_between(OFFICE, due, new_due) == business_minutes_between(OFFICE, paused, resumed)


def test_pause_over_a_weekend_adds_nothing_for_the_weekend():
    due = add_business_minutes(OFFICE, utc(2025, 6, 5, 10, 0), 960)  # Thursday + two days
    assert due == utc(2025, 6, 9, 10, 0)
    # Friday 16:00 to Monday 09:30 is 60 + 30 business minutes; Saturday and Sunday add nothing.
    assert due_after_pause(OFFICE, due, utc(2025, 6, 6, 16, 0), utc(2025, 6, 9, 9, 30)) == utc(2025, 6, 9, 11, 30)
    # Paused at Friday's closing, resumed at Monday's opening: no business time passed.
    assert due_after_pause(OFFICE, due, utc(2025, 6, 6, 17, 0), utc(2025, 6, 9, 9, 0)) == due
    # Resumed on Sunday: the clock restarts at Monday's opening.
    assert due_after_pause(OFFICE, due, utc(2025, 6, 6, 16, 0), utc(2025, 6, 8, 12, 0)) == utc(2025, 6, 9, 11, 0)


def test_pause_keeps_seconds_so_a_short_pause_never_moves_the_due_time_earlier():
    due = utc(2025, 6, 4, 12, 0)
    new_due = due_after_pause(OFFICE, due, utc(2025, 6, 4, 10, 0, 30), utc(2025, 6, 4, 10, 30))
    assert new_due == utc(2025, 6, 4, 12, 29, 30)


def test_breach_before_the_pause_stays_a_breach():
    due = utc(2025, 6, 4, 10, 0)
    assert due_after_pause(OFFICE, due, utc(2025, 6, 4, 11, 0), utc(2025, 6, 5, 10, 0)) == due
    assert due_after_pause(OFFICE, due, due, utc(2025, 6, 5, 10, 0)) == due


def test_sla_clock_binds_a_calendar():
    clock = SlaClock.from_config({"ITOPS_TIMEZONE": "Europe/Berlin"})
    due = clock.due(berlin(2025, 3, 28, 16, 0), 120)
    assert due == utc(2025, 3, 31, 8, 0)
    assert clock.elapsed(berlin(2025, 3, 28, 16, 0), due) == 120
    assert clock.due_after_pause(due, berlin(2025, 3, 31, 9, 0), berlin(2025, 3, 31, 9, 45)) == utc(2025, 3, 31, 8, 45)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_minutes(OFFICE, datetime(2025, 6, 4, 10, 0), 10)
    with pytest.raises(ValueError, match="negative"):
        add_business_minutes(OFFICE, utc(2025, 6, 4, 10, 0), -1)
    with pytest.raises(ValueError, match="before paused_at"):
        due_after_pause(OFFICE, utc(2025, 6, 5, 10, 0), utc(2025, 6, 4, 12, 0), utc(2025, 6, 4, 11, 0))


# -- settings --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "days"), [
    ("mon-fri", {0, 1, 2, 3, 4}),
    ("mon,tue,thu", {0, 1, 3}),
    ("sun-thu", {6, 0, 1, 2, 3}),
    ("mon-sat", {0, 1, 2, 3, 4, 5}),
    ("Fri-Mon", {4, 5, 6, 0}),
    (" monday - wednesday , friday ", {0, 1, 2, 4}),
])
def test_business_days_forms(text, days):
    assert BusinessCalendar.parse(days=text).days == frozenset(days)


def test_hours_forms():
    assert BusinessCalendar.parse(hours="00:00-24:00").windows == ((time(0), time(0)),)
    assert BusinessCalendar.parse(hours="8:00-12:00, 12:00-16:30").windows == (
        (time(8), time(12)), (time(12), time(16, 30)))


@pytest.mark.parametrize(("settings", "message"), [
    ({"timezone": "Mars/Olympus_Mons"}, "unknown time zone 'Mars/Olympus_Mons'; use an IANA name"),
    ({"timezone": "europe/berlin"}, "case-sensitive"),
    ({"days": "mon-fryday"}, "unknown weekday 'fryday' in business days 'mon-fryday'"),
    ({"days": " , "}, "no business days given"),
    ({"hours": "9-17"}, "bad time '9' in business hours '9-17'; write HH:MM-HH:MM"),
    ({"hours": "09:00-25:00"}, "bad time '25:00'"),
    ({"hours": "09:00"}, "must be a range HH:MM-HH:MM"),
    ({"hours": "17:00-09:00"}, "17:00-09:00 are empty or end before they start; a range cannot cross midnight"),
    ({"hours": "08:00-12:00,11:00-13:00"}, "08:00-12:00 and 11:00-13:00 overlap"),
    ({"hours": "24:00-24:00"}, "24:00 can only end a range"),
    ({"hours": ""}, "no business hours given"),
    ({"holidays": "2025-12-25,2025-02-30"}, "bad holiday date '2025-02-30'; write ISO dates"),
])
def test_bad_settings_have_helpful_messages(settings, message):
    with pytest.raises(ValueError) as caught:
        BusinessCalendar.parse(**settings)
    assert message in str(caught.value)


def test_from_config_names_the_setting_to_fix():
    with pytest.raises(ValueError, match=r"^ITOPS_BUSINESS_HOURS: business hours 08:00-12:00 and 11:00-13:00"):
        BusinessCalendar.from_config({"ITOPS_BUSINESS_HOURS": "08:00-12:00,11:00-13:00"})
    with pytest.raises(ValueError, match=r"^ITOPS_TIMEZONE: unknown time zone"):
        BusinessCalendar.from_config({"ITOPS_TIMEZONE": "Nowhere"})


def test_from_config_reads_the_itops_settings(tmp_path):
    from itops.config import load_config

    assert BusinessCalendar.from_config({}) == BusinessCalendar.parse()
    config = load_config({"ITOPS_INSTANCE_DIR": str(tmp_path), "ITOPS_TIMEZONE": "Europe/Berlin",
                          "ITOPS_BUSINESS_DAYS": "sun-thu", "ITOPS_BUSINESS_HOURS": "08:00-12:00,13:00-17:00",
                          "ITOPS_HOLIDAYS": "2025-12-25"})
    assert BusinessCalendar.from_config(config) == BusinessCalendar(
        BERLIN, frozenset({6, 0, 1, 2, 3}), ((time(8), time(12)), (time(13), time(17))),
        frozenset({date(2025, 12, 25)}))


def test_direct_construction_is_checked_too():
    with pytest.raises(ValueError, match="no business days"):
        BusinessCalendar(BERLIN, frozenset(), ((time(9), time(17)),))
    with pytest.raises(ValueError, match="sorted"):
        BusinessCalendar(BERLIN, frozenset({0}), ((time(13), time(17)), (time(8), time(12))))


def test_the_clock_imports_without_flask_or_a_database():
    code = "import sys, itops.tickets.sla; assert not {'flask', 'sqlalchemy'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
