"""The CLI's local mode: the engine and the read queries run here, on the database itself."""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING

from rollout.api import reads, views
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
from rollout.cli.backend import BackendError, NotFound, PageResponse, RolloutRef, Steering
from rollout.config import Fleet, Team
from rollout.domain.audit import Actor
from rollout.quoting import cut, quoted
from rollout.store.database import reading, transaction

if TYPE_CHECKING:
    from rollout.engine.runtime import Runtime

# How often a waiting command reads the database again: a rollout moves in seconds.
POLL_SECONDS = 1.0


def local_actor() -> Actor:
    """Who acts in local mode, for the audit trail: the user of the operating system."""
    try:
        return Actor.local(getpass.getuser())
    except (OSError, KeyError):  # no login name and no passwd entry (a bare container)
        return Actor.local(f"uid {os.getuid()}")


class LocalBackend:
    """Every operation in this process, against ROLLOUT_DATABASE_URL; the engine and the
    fleet config are loaded on first use, so `rollout list` never parses the config."""

    def __init__(self, database_url: Callable[[], str], fleet: Callable[[], Fleet]) -> None:
        self._url = cache(database_url)
        self._fleet = cache(fleet)

    def _runtime(self) -> Runtime:
        from rollout.engine.runtime import Runtime

        return Runtime.from_settings()

    def _team(self, name: str) -> Team:
        fleet = self._fleet()
        try:
            return fleet.team(name)
        except KeyError:
            known = ", ".join(t.name for t in fleet.teams) or "none"
            raise BackendError(f"unknown team {quoted(name)} (teams: {known})") from None

    def submit(self, service: str, version: str, digest: str | None) -> SubmittedOut:
        from rollout.engine.submission import SubmitError, submit

        fleet = self._fleet()
        try:
            done = submit(self._runtime(), fleet, service, version, digest)
        except SubmitError as error:
            raise BackendError(str(error)) from None
        return SubmittedOut(
            release_id=done.release_id,
            rollout_id=done.rollout_id,
            service=service,
            version=version,
            digest=digest,
            created=done.created,
            superseded=list(done.superseded),
        )

    def list_rollouts(
        self,
        *,
        service: str | None,
        state: str | None,
        stage: str | None,
        team: str | None,
        limit: int,
    ) -> list[RolloutSummary]:
        with reading(self._url()) as session:
            return reads.list_rollouts(
                session, service=service, state=state, stage=stage, team=team, limit=limit
            )

    def show_rollout(self, rollout_id: int) -> RolloutDetailView:
        with reading(self._url()) as session:
            found = reads.show_rollout(session, rollout_id)
        if found is None:
            raise BackendError(f"no rollout {rollout_id}")
        return found

    def steer(self, rollout_id: int, action: Steering, reason: str | None) -> SteeredOut:
        from rollout.engine import steering

        runtime = self._runtime()
        try:
            if action == "retry":
                done = steering.retry(runtime, self._fleet(), rollout_id, actor=local_actor())
            elif action == "promote":
                done = steering.promote(runtime, rollout_id, reason, actor=local_actor())
            else:
                act = {"pause": steering.pause, "resume": steering.resume, "abort": steering.abort}
                done = act[action](runtime, rollout_id, reason, actor=local_actor())
        except (steering.NoSuchRollout, steering.SteeringRefused) as error:
            raise BackendError(str(error)) from None
        return views.steered_out(done)

    def recall(self, service: str, version: str, reason: str | None) -> RecalledOut:
        from rollout.engine.recall import NoSuchRelease, recall

        try:
            done = recall(self._runtime(), service, version, reason, actor=local_actor())
            return views.recalled_out(done)
        except NoSuchRelease as error:
            raise BackendError(str(error)) from None

    def freeze(self, target: str, until: str, reason: str, kind: str | None) -> FreezeOut:
        from rollout.engine.freezes import FreezeRefused, freeze

        fleet = self._fleet()
        try:
            done = freeze(self._runtime(), fleet, target, until, reason, kind, actor=local_actor())
            return views.freeze_out(done)
        except FreezeRefused as error:
            raise BackendError(str(error)) from None

    def unfreeze(self, target: str, kind: str | None) -> UnfrozenOut:
        from rollout.engine.freezes import unfreeze

        done = unfreeze(self._runtime(), target, kind, actor=local_actor())
        return UnfrozenOut(changed=done.changed, message=done.message)

    def freezes(self) -> list[FreezeOut]:
        from rollout.engine.freezes import active_freezes

        with reading(self._url()) as session:
            found = active_freezes(session, datetime.now(UTC))
        return [views.freeze_out(f) for f in found]

    def oncall(self, team: str, at: datetime) -> OnCallOut:
        from rollout.paging.outbox import on_call_now
        from rollout.plan.build import paging_spec

        spec = self._team(team)
        if spec.rotations is None:
            raise BackendError(f"team {quoted(team)} has no rotations in the fleet config")
        with reading(self._url()) as session:
            on_call = on_call_now(session, paging_spec(spec), at)
        assert on_call is not None
        return views.oncall_out(team, on_call, at)

    def override(
        self,
        team: str,
        member: str,
        starts: datetime,
        ends: datetime,
        role: str,
        replaces: str | None,
    ) -> OverrideOut:
        from rollout.store.overrides import OverrideRefused, add_override

        spec = self._team(team)
        try:
            with transaction(self._url()) as session:
                row = add_override(
                    session,
                    spec,
                    member,
                    starts,
                    ends,
                    datetime.now(UTC),
                    role,
                    replaces,
                    actor=local_actor(),
                )
                return views.override_out(row)
        except OverrideRefused as error:
            raise BackendError(str(error)) from None

    def pages(self, team: str | None, open_only: bool, limit: int) -> list[PageView]:
        with reading(self._url()) as session:
            return reads.list_pages(session, team=team, open_only=open_only, limit=limit)

    def answer(
        self, page_id: int, response: PageResponse, note: str | None, to_team: str | None
    ) -> AnsweredOut:
        from rollout.paging.responding import Response, ResponseRefused, respond
        from rollout.plan.build import paging_spec
        from rollout.store.models import Page

        to_paging = None
        if to_team is not None:
            try:
                to_paging = paging_spec(self._fleet().team(to_team))
            except KeyError:
                raise BackendError(f"unknown team {quoted(to_team)}") from None
        actor = local_actor()
        with transaction(self._url()) as session:
            page = session.get(Page, page_id)
            if page is None:
                raise BackendError(f"no page {page_id}")
            try:
                again = respond(
                    session,
                    page,
                    Response(response),
                    datetime.now(UTC),
                    actor=actor,
                    note=note,
                    to_team=to_team,
                    to_paging=to_paging,
                )
            except ResponseRefused as refusal:
                raise BackendError(str(refusal)) from None
            answered = reads.page_views(session, [page] if again is None else [page, again])
        repaged = answered[1] if len(answered) > 1 else None
        return AnsweredOut(**answered[0].model_dump(), repaged=repaged)

    def hygiene(self, since: str, team: str | None, night_budget: float) -> HygieneOut:
        from rollout.durations import parse_window

        window = parse_window(since)
        fleet = self._fleet()
        known = [t.name for t in fleet.teams]
        if team is not None and team not in known:
            raise BackendError(f"unknown team {quoted(team)} (teams: {', '.join(known) or 'none'})")
        until = datetime.now(UTC)
        with reading(self._url()) as session:
            return reads.hygiene_report(session, fleet, until - window, until, team, night_budget)

    def create_token(
        self,
        scope: str,
        services: list[str],
        team: str | None,
        note: str | None,
        environments: list[str],
    ) -> TokenCreated:
        from rollout.store.tokens import Scope, TokenError, create_token, grant_problem

        problem = grant_problem(self._fleet(), services, team, environments)
        if problem is not None:
            raise BackendError(problem)
        try:
            with transaction(self._url()) as session:
                info, secret = create_token(
                    session,
                    Scope(scope),
                    datetime.now(UTC),
                    services,
                    team,
                    note,
                    environments,
                    actor=local_actor(),
                )
        except TokenError as error:
            raise BackendError(str(error)) from None
        return TokenCreated(token=views.token_view(info), secret=secret)

    def revoke_token(self, token_id: int) -> TokenView:
        from rollout.store.tokens import revoke_token

        with transaction(self._url()) as session:
            info = revoke_token(session, token_id, datetime.now(UTC), actor=local_actor())
        if info is None:
            raise BackendError(f"no token {token_id}")
        return views.token_view(info)

    def tokens(self) -> list[TokenView]:
        from rollout.store.tokens import list_tokens

        with reading(self._url()) as session:
            return [views.token_view(t) for t in list_tokens(session)]

    def _status(self, rollout: RolloutRef, deadline: datetime) -> RolloutStatus:
        from rollout.api.status import release_rollout, rollout_status

        with reading(self._url()) as session:
            if isinstance(rollout, int):
                rollout_id: int | None = rollout
            else:
                rollout_id = release_rollout(session, *rollout)
            found = None
            if rollout_id is not None:
                found = rollout_status(session, rollout_id, datetime.now(UTC), deadline)
        if found is None:
            what = rollout if isinstance(rollout, int) else "of " + " ".join(map(cut, rollout))
            raise NotFound(f"no rollout {what}")
        return found

    def rollout_status(
        self, rollout: RolloutRef, within: timedelta, wait: timedelta
    ) -> RolloutStatus:
        deadline = datetime.now(UTC) + within
        until = time.monotonic() + wait.total_seconds()
        status = self._status(rollout, deadline)
        while not status.verdict.settled and time.monotonic() < until:
            time.sleep(min(POLL_SECONDS, max(until - time.monotonic(), 0)))
            status = self._status(status.id, deadline)
        return status

    def rollout_changes(self, rollout_id: int, within: timedelta) -> Iterator[RolloutStatus | None]:
        deadline = datetime.now(UTC) + within
        sent = None
        while True:
            status = self._status(rollout_id, deadline)
            yield None if status == sent else status
            if status.final:
                return
            sent = status
            time.sleep(POLL_SECONDS)

    def fleet(
        self,
        *,
        service: str | None,
        stage: str | None,
        environment: str | None,
        team: str | None,
    ) -> FleetView:
        from rollout.api.fleet_read import UnknownFilter, fleet_view

        fleet = self._fleet()
        try:
            with reading(self._url()) as session:
                return fleet_view(
                    session, fleet, service=service, stage=stage, environment=environment, team=team
                )
        except UnknownFilter as error:
            raise BackendError(str(error)) from None

    def history(self, service: str | None, rollout_id: int | None, since: str) -> EventList:
        from rollout.api.history import timeline
        from rollout.durations import parse_window

        try:
            window = parse_window(since)
        except ValueError as error:
            raise BackendError(f"since: {error}") from None
        with reading(self._url()) as session:
            if rollout_id is not None and reads.rollout_team(session, rollout_id) is None:
                raise BackendError(f"no rollout {rollout_id}")
            since_at = datetime.now(UTC) - window
            found = timeline(session, since=since_at, service=service, rollout_id=rollout_id)
        return EventList(events=found)

    def force_promote(self, rollout_id: int, reason: str) -> SteeredOut:
        from rollout.engine import steering

        try:
            done = steering.promote(
                self._runtime(), rollout_id, reason, actor=local_actor(), force=True
            )
        except (steering.NoSuchRollout, steering.SteeringRefused) as error:
            raise BackendError(str(error)) from None
        return views.steered_out(done)

    def skip(self, rollout_id: int, environment: str, reason: str) -> SteeredOut:
        from rollout.engine import steering

        try:
            done = steering.skip(
                self._runtime(), rollout_id, environment, reason, actor=local_actor()
            )
        except (steering.NoSuchRollout, steering.NotInRollout, steering.SteeringRefused) as error:
            raise BackendError(str(error)) from None
        return views.steered_out(done)
