"""GET /api/apps/{app_id}/stats through the manage handler: the rollups, zero-filled.

Events are stored as the store function writes them and counted by the aggregator
(both on the test database, each as its own role); the route answers as
`sluice_manage`, so its grants (migrations/0006) are what is tested.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sluice.core.config import DatabaseSettings
from sluice.core.db import Database
from sluice.manage.manage import Manager
from sluice.rollups import aggregate

import functions.manage.app as manage_app
from tests.aggregate.conftest import reset
from tests.aggregate.support import store, wire_event
from tests.handlers.test_manage import call
from tests.support import SwitchableProxy, make_owner

START = datetime(2026, 3, 1, tzinfo=UTC)
PROPERTY_SETTINGS = settings(
    derandomize=True,  # a fixed seed: CI and a developer see the same cases
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FUZZ_SETTINGS = settings(PROPERTY_SETTINGS, max_examples=300)


@pytest.fixture
def manager(database_url, clock, monkeypatch):
    """The manage handler's service as in AWS: its own role, sluice_manage."""
    service = Manager(Database(DatabaseSettings(url=database_url, user="sluice_manage")), clock)
    monkeypatch.setattr(manage_app, "manager", lambda: service)
    yield service
    service.database.close()


@pytest.fixture
def aggregator(database_url):
    database = Database(DatabaseSettings(url=database_url, user="sluice_aggregate"))
    yield database
    database.close()


@pytest.fixture
def owner(db, clock, manager):
    return make_owner(db, clock)


@pytest.fixture
def app_id(context, owner) -> str:
    status, body = call(context, "POST", "/api/apps", {"name": "Shop"}, token=owner[1])
    assert status == 201, body
    return body["app_id"]


def stats(context, app_id: str, query: str, token: str | None):
    return call(context, "GET", f"/api/apps/{app_id}/stats?{query}", token=token)


def iso(moment: datetime) -> str:
    return quote(moment.isoformat())


def test_the_series_has_every_hour_with_zeros_and_says_how_fresh_it_is(
    context, db, owner, app_id, aggregator
):
    # Given two events in one hour and one two hours later, counted
    store(
        db,
        [
            wire_event(app_id, "login", START + timedelta(minutes=5)),
            wire_event(app_id, "login", START + timedelta(minutes=50), status="invalid"),
            wire_event(app_id, "purchase", START + timedelta(hours=2, minutes=1)),
            wire_event("app_other", "login", START),  # another app's: never in this answer
        ],
    )
    result = aggregate.run(aggregator, 100)

    # When four hours are asked for, from a time inside the first
    status, body = stats(
        context, app_id, f"from={iso(START + timedelta(minutes=30))}&to=2026-03-01T04:00Z", owner[1]
    )

    # Then every hour is there, the empty ones as zeros
    assert status == 200, body
    assert body == {
        "app_id": app_id,
        "granularity": "hour",
        "from": "2026-03-01T00:30:00+00:00",
        "to": "2026-03-01T04:00:00+00:00",
        "complete_through": result.complete_through.astimezone(UTC).isoformat(),
        "total": 3,
        "series": [
            {"start": "2026-03-01T00:00:00+00:00", "count": 2},
            {"start": "2026-03-01T01:00:00+00:00", "count": 0},
            {"start": "2026-03-01T02:00:00+00:00", "count": 1},
            {"start": "2026-03-01T03:00:00+00:00", "count": 0},
        ],
    }
    # And the filters narrow it; days come whole
    query = f"from={iso(START)}&to={iso(START + timedelta(days=2))}&granularity=day"
    assert stats(context, app_id, query + "&status=invalid", owner[1])[1]["series"] == [
        {"start": "2026-03-01T00:00:00+00:00", "count": 1},
        {"start": "2026-03-02T00:00:00+00:00", "count": 0},
    ]
    assert stats(context, app_id, query + "&event_name=purchase", owner[1])[1]["total"] == 1


def test_the_answer_comes_from_the_rollups_not_the_events(context, db, owner, app_id, aggregator):
    # Given counted events, then the events gone (TRUNCATE: the rollups are untouched)
    store(db, [wire_event(app_id, "login", START + timedelta(minutes=m)) for m in range(3)])
    aggregate.run(aggregator, 100)
    with db.cursor() as cur:
        cur.execute("TRUNCATE events")
    # And new events stored but not counted yet
    store(db, [wire_event(app_id, "login", START)])

    status, body = stats(context, app_id, f"from={iso(START)}&to={iso(START)}Z", owner[1])
    assert (status, body["error"]) == (400, "invalid_range")  # to == from
    status, body = stats(
        context, app_id, f"from={iso(START)}&to={iso(START + timedelta(hours=1))}", owner[1]
    )

    # Then the counts are the rollups': 3, not the 1 event the table holds
    assert (status, body["total"]) == (200, 3)


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("to=2026-03-02", "invalid_range"),  # no from
        ("from=2026-03-01", "invalid_range"),  # no to
        ("from=yesterday&to=2026-03-02", "invalid_range"),
        ("from=2026-03-02T00:00Z&to=2026-03-01T00:00Z", "invalid_range"),  # reversed
        ("from=2026-03-01&to=2026-03-02T00:00Z", "invalid_range"),  # no zone: whose midnight?
        ("from=2026-03-01T00:00:00%2B01:00&to=2026-02-28T23:00:00Z", "invalid_range"),
        ("from=0001-01-01T00:00:00%2B01:00&to=2026-03-01T00:00Z", "invalid_range"),  # before year 1
        ("from=9999-12-31T23:00Z&to=9999-12-31T23:30:00-01:00", "invalid_range"),  # after 9999
        ("from=10000-01-01&to=10000-01-02", "invalid_range"),
        ("from=2026-03-01T00:00Z&to=2026-03-02T00:00Z&granularity=minute", "invalid_granularity"),
        ("from=2026-03-01T00:00Z&to=2026-03-02T00:00Z&granularity=", "invalid_granularity"),
        ("from=2026-03-01T00:00Z&to=2026-04-01T00:00:01Z", "range_too_large"),  # 31 days + 1 s
        (
            "from=2025-03-01T00:00Z&to=2026-03-02T00:00:01Z&granularity=day",
            "range_too_large",
        ),  # 366 d + 1 s
        ("from=2026-03-01T00:00Z&to=2026-03-02T00:00Z&status=queued", "invalid_status"),
        ("from=2026-03-01T00:00Z&to=2026-03-02T00:00Z&since=2026-03-01", "invalid_query"),
        (
            "from=2026-03-01T00:00Z&to=2026-03-02T00:00Z&from=2026-03-01",
            "invalid_query",
        ),  # repeated
        ("from=2026-03-01T00:00Z&to=2026-03-02T00:00Z&event_name=", "invalid_query"),
        ("from=2026-03-01T00:00Z&to=2026-03-02T00:00Z&event_name=a%00b", "invalid_query"),
        (
            "from=2026-03-01T00:00Z&to=2026-03-02T00:00Z&event_name=%FF%FE",
            "invalid_query",
        ),  # not UTF-8
        (
            "from=2026-03-01T00:00Z&to=2026-03-02T00:00Z&event_name=%ED%A0%80",
            "invalid_query",
        ),  # a surrogate
    ],
)
def test_bad_queries_are_400_with_the_reason(context, owner, app_id, query, code):
    status, body = stats(context, app_id, query, owner[1])
    assert (status, body["error"]) == (400, code), body
    assert body["message"]


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("2026-03-01T00:00:00Z", True),
        ("2026-03-01T00:00:00%2B01:00", True),
        ("2026-03-01T01:30:00.5-01:00", True),
        ("2026-03-01T00:00:00", False),  # no zone: whose midnight?
        ("2026-03-01T00:00", False),
        ("2026-03-01", False),
        ("yesterday", False),
        ("0001-01-01T00:00:00%2B01:00", False),  # before year 1 in UTC
        ("", False),
    ],
)
def test_stats_and_the_events_list_take_times_by_one_rule(context, owner, app_id, value, accepted):
    # A time must name its zone (Z or an offset), for the stats' from/to and the
    # events list's since/until alike
    expected = 200 if accepted else 400
    status, body = stats(context, app_id, f"from={value}&to=2026-03-01T12:00:00Z", owner[1])
    assert status == expected, body
    if not accepted:
        assert body["error"] == "invalid_range"
        assert "Z or +hh:mm" in body["message"], body
    status, body = call(context, "GET", f"/api/apps/{app_id}/events?since={value}", token=owner[1])
    assert status == expected, body
    if not accepted:
        assert "Z or +hh:mm" in body["message"], body


def test_the_longest_ranges_are_accepted(context, owner, app_id):
    status, body = stats(context, app_id, "from=2026-03-01T00:00Z&to=2026-04-01T00:00Z", owner[1])
    assert (status, len(body["series"])) == (200, 31 * 24)
    query = "from=2025-03-01T12:00Z&to=2026-03-02T12:00Z&granularity=day"
    status, body = stats(context, app_id, query, owner[1])
    assert (status, len(body["series"])) == (200, 367)  # a partial day at each end


def test_the_first_and_last_hours_of_the_calendar_are_answered(context, owner, app_id):
    status, body = stats(context, app_id, "from=0001-01-01T00:00Z&to=0001-01-01T02:00Z", owner[1])
    assert (status, [p["start"] for p in body["series"]]) == (
        200,
        ["0001-01-01T00:00:00+00:00", "0001-01-01T01:00:00+00:00"],
    )
    status, body = stats(
        context, app_id, "from=9999-12-31T22:30Z&to=9999-12-31T23:59:59.999999Z", owner[1]
    )
    assert (status, body["series"][-1]) == (200, {"start": "9999-12-31T23:00:00+00:00", "count": 0})


def test_a_session_is_needed_and_other_accounts_get_404(context, db, clock, owner, app_id):
    query = "from=2026-03-01T00:00Z&to=2026-03-02T00:00Z"
    assert stats(context, app_id, query, None)[0] == 401
    assert stats(context, app_id, query, "not-a-session")[0] == 401
    _, stranger = make_owner(db, clock, "stranger@sluice.test")
    status, body = stats(context, app_id, query, stranger)
    assert (status, body["error"]) == (404, "app_not_found")
    unknown = "app_" + "0" * 32
    assert stats(context, unknown, query, stranger) == (
        404,
        {**body, "message": body["message"].replace(app_id, unknown)},
    )


def test_a_database_outage_is_a_503(context, owner, app_id, database_url, clock, monkeypatch):
    proxy = SwitchableProxy(database_url)
    proxy.on()
    service = Manager(Database(DatabaseSettings(url=proxy.url, user="sluice_manage")), clock)
    monkeypatch.setattr(manage_app, "manager", lambda: service)
    query = "from=2026-03-01T00:00Z&to=2026-03-02T00:00Z"
    try:
        assert stats(context, app_id, query, owner[1])[0] == 200
        proxy.off()
        status, body = stats(context, app_id, query, owner[1])
        assert (status, body["error"]) == (503, "database_unavailable")
    finally:
        service.database.close()
        proxy.off()


# --- properties -----------------------------------------------------------------------


def rollup_counts(db, granularity: str, app_id: str, name: str | None, status: str | None):
    """The rollup table itself, summed per bucket: what the route must show."""
    table, column = (
        ("event_counts_hourly", "hour") if granularity == "hour" else ("event_counts_daily", "day")
    )
    with db.cursor() as cur:
        cur.execute(
            f"SELECT {column}, sum(events) FROM {table} WHERE app_id = %s"  # noqa: S608
            " AND (%s::text IS NULL OR event_name = %s) AND (%s::text IS NULL OR status = %s)"
            f" GROUP BY {column}",
            (app_id, name, name, status, status),
        )
        return {bucket.astimezone(UTC): int(total) for bucket, total in cur.fetchall()}


@st.composite
def made_up_events(draw, app_id: str) -> dict:
    return wire_event(
        draw(st.sampled_from([app_id, "app_noise"])),
        draw(st.sampled_from(["login", "purchase"])),
        START + timedelta(minutes=draw(st.integers(0, 5 * 24 * 60 - 1))),
        status=draw(st.sampled_from(["valid", "invalid"])),
    )


def test_the_series_equals_the_rollups_and_fills_gaps_with_zeros(
    context, db, owner, app_id, aggregator
):
    @PROPERTY_SETTINGS
    @given(
        events=st.lists(made_up_events(app_id), min_size=1, max_size=30),
        granularity=st.sampled_from(["hour", "day"]),
        name=st.sampled_from([None, "login", "purchase", "never"]),
        status=st.sampled_from([None, "valid", "invalid"]),
        start_minutes=st.integers(-24 * 60, 6 * 24 * 60),
        length_minutes=st.integers(1, 8 * 24 * 60),
        offset_hours=st.integers(-12, 14),
    )
    def check(events, granularity, name, status, start_minutes, length_minutes, offset_hours):
        reset(db)
        store(db, events)
        aggregate.run(aggregator, 100)
        start = START + timedelta(minutes=start_minutes)
        end = start + timedelta(minutes=length_minutes)
        zone = timezone_of(offset_hours)  # any offset names the same instants
        query = f"from={iso(start.astimezone(zone))}&to={iso(end.astimezone(zone))}"
        query += f"&granularity={granularity}"
        query += f"&event_name={name}" if name else ""
        query += f"&status={status}" if status else ""

        answer_status, body = stats(context, app_id, query, owner[1])

        assert answer_status == 200, body
        step = timedelta(hours=1) if granularity == "hour" else timedelta(days=1)
        buckets = [datetime.fromisoformat(p["start"]) for p in body["series"]]
        assert buckets[0] <= start < buckets[0] + step
        assert buckets[-1] < end <= buckets[-1] + step
        assert all(b - a == step for a, b in zip(buckets, buckets[1:], strict=False))
        counts = rollup_counts(db, granularity, app_id, name, status)
        assert [p["count"] for p in body["series"]] == [counts.get(b, 0) for b in buckets]
        assert body["total"] == sum(counts.get(b, 0) for b in buckets)

    check()


def timezone_of(hours: int):
    from datetime import timezone

    return timezone(timedelta(hours=hours))


# Values that sit at the edges: the calendar's, the limits', numbers too big for anything.
odd_values = st.one_of(
    st.sampled_from(
        [
            "0001-01-01",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59.999999",
            "9999-12-31T23:59:59-14:00",
            "2026-02-29",
            "2024-02-29T24:00",
            "2026-03-01T00:00:00+24:00",
            "99999999999999999999",
            "-1",
            "1e309",
            "NaN",
            "2026-03-01T00:00:00.0000001Z",
            "%FF",
            "%ED%A0%80",
            "%C0%AF",
            "%",
            "%%",
            "%0",
            "%00",
            "\ud800",  # a lone surrogate, unescaped
            "hour",
            "day",
            "valid",
            "invalid",
            "",
        ]
    ),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)).map(
        lambda d: quote(d.isoformat())
    ),
    st.integers(-(10**30), 10**30).map(str),
    st.text(max_size=20).map(lambda t: quote(t, safe="")),
    st.text(max_size=20),
)
names = st.one_of(
    st.sampled_from(["from", "to", "granularity", "event_name", "status", "limit", "", "%FF"]),
    st.text(max_size=8),
)


def test_no_query_string_gets_a_5xx(context, owner, app_id):
    @FUZZ_SETTINGS
    @given(pairs=st.lists(st.tuples(names, odd_values), max_size=7))
    def fuzz(pairs):
        query = "&".join(f"{name}={value}" for name, value in pairs)
        status, body = stats(context, app_id, query, owner[1])
        assert status < 500, (query, body)
        assert status == 200 or body["error"] in {
            "invalid_range",
            "invalid_granularity",
            "range_too_large",
            "invalid_status",
            "invalid_query",
        }, (query, body)

    fuzz()
