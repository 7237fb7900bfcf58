"""Teams: members, on-call rotations, escalation and the channels pages reach them through."""

from __future__ import annotations

import re
from datetime import date, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from rollout.config.base import ConfigModel, Name
from rollout.durations import PositiveDuration
from rollout.plan.channels import ChannelSpec


class Member(ConfigModel):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    timezone: str
    # How a page reaches this person on the team's channels: an email channel writes to
    # their address, a Slack channel mentions them (a member id like U024BE7LH, or @name).
    email: str | None = None
    slack: Annotated[str, Field(pattern=r"^@?[A-Za-z0-9._-]{1,80}$")] | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like Europe/Berlin)"
            ) from None
        return value

    @field_validator("email")
    @classmethod
    def _plausible_email(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
            raise ValueError(f"invalid email address {value!r}")
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class RotationSpec(ConfigModel):
    """An on-call rotation: ordered members taking shifts that hand off at wall-clock time."""

    # Names of the team's members; fewer than three cannot share nights humanely.
    members: Annotated[list[str], Field(min_length=3)]
    shift: PositiveDuration = timedelta(days=7)
    handoff: time = time(9, 0)
    start: date
    timezone: str

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return Member._known_zone(value)

    @field_validator("members")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a member appears twice in the rotation")
        return value


class Rotations(ConfigModel):
    primary: RotationSpec
    secondary: RotationSpec


class EscalationSpec(ConfigModel):
    """If a page is still unacknowledged `after` it was sent, it also goes to `to`."""

    to: Literal["secondary", "team"]
    after: PositiveDuration


_DEFAULT_ESCALATION = [{"to": "secondary", "after": "15m"}, {"to": "team", "after": "30m"}]


class Team(ConfigModel):
    name: Name
    members: list[Member] = Field(default_factory=list)
    rotations: Rotations | None = None
    escalation: list[EscalationSpec] = Field(
        default_factory=lambda: [EscalationSpec.model_validate(e) for e in _DEFAULT_ESCALATION]
    )
    # How pages reach the team: webhook, pagerduty, alertmanager, slack, email. The plan's
    # own specs: checked whole here, so a bad channel is a config error, not a failed page
    # at 3 a.m.; secrets stay references, read only when a page is delivered.
    channels: list[ChannelSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rotation_members_are_members(self) -> Team:
        known = {m.name for m in self.members}
        for role, spec in (
            (("primary", self.rotations.primary), ("secondary", self.rotations.secondary))
            if self.rotations
            else ()
        ):
            unknown = [name for name in spec.members if name not in known]
            if unknown:
                raise ValueError(
                    f"{role} rotation names {', '.join(map(repr, unknown))}, not members of "
                    f"team {self.name!r}"
                )
        return self

    def member(self, name: str) -> Member:
        return next(m for m in self.members if m.name == name)
