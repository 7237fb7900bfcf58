"""The CLI's one seam: every operation a command needs, done on the database or by the API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Literal, Protocol

from rollout.api.schemas import (
    AnsweredOut,
    FreezeOut,
    HygieneOut,
    OnCallOut,
    OverrideOut,
    PageView,
    RecalledOut,
    RolloutDetailView,
    RolloutSummary,
    SteeredOut,
    SubmittedOut,
    TokenCreated,
    TokenView,
    UnfrozenOut,
)
from rollout.api.schemas.fleet import FleetView
from rollout.api.schemas.history import EventList
from rollout.api.schemas.status import RolloutStatus
from rollout.config import Fleet

Steering = Literal["pause", "resume", "abort", "retry", "promote"]
PageResponse = Literal["acknowledge", "resolve", "misrouted", "not_actionable"]


class BackendError(Exception):
    """A refusal in one line: the engine's, or the API's with its HTTP status."""


class NotFound(BackendError):
    """No such rollout or release (HTTP 404): `rollout status` exits 4 for it."""


# A rollout by its id, or a release by service and version (its newest rollout).
RolloutRef = int | tuple[str, str]


class Backend(Protocol):
    """What the commands ask for; both modes answer with the API's read models, so a command
    written once over a Backend prints the same locally and remotely."""

    def submit(self, service: str, version: str, digest: str | None) -> SubmittedOut: ...

    def list_rollouts(
        self,
        *,
        service: str | None,
        state: str | None,
        stage: str | None,
        team: str | None,
        limit: int,
    ) -> list[RolloutSummary]: ...

    def show_rollout(self, rollout_id: int) -> RolloutDetailView: ...

    def steer(self, rollout_id: int, action: Steering, reason: str | None) -> SteeredOut: ...

    def recall(self, service: str, version: str, reason: str | None) -> RecalledOut: ...

    def freeze(self, target: str, until: str, reason: str, kind: str | None) -> FreezeOut: ...

    def unfreeze(self, target: str, kind: str | None) -> UnfrozenOut: ...

    def freezes(self) -> list[FreezeOut]: ...

    def oncall(self, team: str, at: datetime) -> OnCallOut: ...

    def override(
        self,
        team: str,
        member: str,
        starts: datetime,
        ends: datetime,
        role: str,
        replaces: str | None,
    ) -> OverrideOut: ...

    def pages(self, team: str | None, open_only: bool, limit: int) -> list[PageView]: ...

    def answer(
        self, page_id: int, response: PageResponse, note: str | None, to_team: str | None
    ) -> AnsweredOut: ...

    def hygiene(self, since: str, team: str | None, night_budget: float) -> HygieneOut: ...

    def create_token(
        self,
        scope: str,
        services: list[str],
        team: str | None,
        note: str | None,
        environments: list[str],
    ) -> TokenCreated: ...

    def revoke_token(self, token_id: int) -> TokenView: ...

    def tokens(self) -> list[TokenView]: ...

    def rollout_status(
        self, rollout: RolloutRef, within: timedelta, wait: timedelta
    ) -> RolloutStatus:
        """The status judged for a caller prepared to wait `within`; with `wait`, answered
        as soon as the verdict is settled or when the wait ends (the API: at most 60s)."""
        ...

    def rollout_changes(self, rollout_id: int, within: timedelta) -> Iterator[RolloutStatus | None]:
        """The status at once, then each change until the rollout is final; None between
        changes, every few seconds at most, so a caller may look at its clock."""
        ...

    def fleet(
        self,
        *,
        service: str | None,
        stage: str | None,
        environment: str | None,
        team: str | None,
    ) -> FleetView: ...
    def history(self, service: str | None, rollout_id: int | None, since: str) -> EventList: ...

    def force_promote(self, rollout_id: int, reason: str) -> SteeredOut: ...

    def skip(self, rollout_id: int, environment: str, reason: str) -> SteeredOut: ...


def choose_backend(database_url: Callable[[], str], fleet: Callable[[], Fleet]) -> Backend:
    """The API when ROLLOUT_API_URL and ROLLOUT_TOKEN are set, else the database; the
    database URL and the fleet config are read only if local mode needs them."""
    from rollout.cli.remote import Remote, RemoteBackend

    remote = Remote.from_environment()
    if remote is not None:
        return RemoteBackend(remote)
    from rollout.cli.local import LocalBackend

    return LocalBackend(database_url, fleet)
