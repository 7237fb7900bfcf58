"""What a freeze accepts: an ISO time or a duration in the future, and a known target."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from rollout.config import load_fleet
from rollout.engine.freezes import FreezeRefused, parse_until, target_kind
from tests.conftest import FIXTURES

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", NOW + timedelta(hours=2)),
        ("90m", NOW + timedelta(minutes=90)),
        ("1d", NOW + timedelta(days=1)),
        ("2026-12-24T18:00+01:00", datetime(2026, 12, 24, 17, tzinfo=UTC)),
        ("2026-12-24T18:00", datetime(2026, 12, 24, 18, tzinfo=UTC)),  # no zone: UTC
        (" 2026-11-27 12:00:01Z ", NOW + timedelta(seconds=1)),
    ],
)
def test_until_accepts_a_time_or_a_duration(text: str, expected: datetime) -> None:
    assert parse_until(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-11-27T12:00Z", "is not in the future"),
        ("2020-01-01", "is not in the future"),
        ("0s", "is not in the future"),
        ("tomorrow", "invalid until 'tomorrow'"),
        ("-1h", "invalid until '-1h'"),
    ],
)
def test_until_refuses_the_past_and_nonsense(text: str, message: str) -> None:
    with pytest.raises(FreezeRefused, match=message):
        parse_until(text, NOW)


def test_a_target_is_an_environment_or_a_service_of_the_fleet() -> None:
    fleet = load_fleet(FIXTURES / "fleet.yaml")
    assert target_kind(fleet, "prod-1") == "environment"
    assert target_kind(fleet, "checkout") == "service"
    with pytest.raises(FreezeRefused, match="unknown environment or service 'prod-9'"):
        target_kind(fleet, "prod-9")
    with pytest.raises(FreezeRefused, match="unknown service 'prod-1'"):
        target_kind(fleet, "prod-1", "service")


def test_until_from_the_api_may_be_a_parsed_time() -> None:
    assert parse_until(datetime(2027, 1, 1), NOW) == datetime(2027, 1, 1, tzinfo=UTC)
    east = timezone(timedelta(hours=1))
    with pytest.raises(FreezeRefused, match="is out of range"):
        parse_until(datetime(1, 1, 1, tzinfo=east), NOW)
