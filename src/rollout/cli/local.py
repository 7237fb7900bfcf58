"""The CLI's local mode: the engine and the read queries run here, on the database itself."""

from __future__ import annotations

import getpass
import socket
from collections.abc import Callable
from datetime import UTC, datetime
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
from rollout.cli.backend import BackendError, PageResponse, Steering
from rollout.config import Fleet, Team
from rollout.quoting import quoted
from rollout.store.database import reading, transaction

if TYPE_CHECKING:
    from rollout.engine.runtime import Runtime


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
                done = steering.retry(runtime, self._fleet(), rollout_id)
            elif action == "promote":
                done = steering.promote(runtime, rollout_id)
            else:
                act = {"pause": steering.pause, "resume": steering.resume, "abort": steering.abort}
                done = act[action](runtime, rollout_id, reason)
        except (steering.NoSuchRollout, steering.SteeringRefused) as error:
            raise BackendError(str(error)) from None
        return views.steered_out(done)

    def recall(self, service: str, version: str, reason: str | None) -> RecalledOut:
        from rollout.engine.recall import NoSuchRelease, recall

        try:
            return views.recalled_out(recall(self._runtime(), service, version, reason))
        except NoSuchRelease as error:
            raise BackendError(str(error)) from None

    def freeze(self, target: str, until: str, reason: str, kind: str | None) -> FreezeOut:
        from rollout.engine.freezes import FreezeRefused, freeze

        fleet = self._fleet()
        try:
            return views.freeze_out(freeze(self._runtime(), fleet, target, until, reason, kind))
        except FreezeRefused as error:
            raise BackendError(str(error)) from None

    def unfreeze(self, target: str, kind: str | None) -> UnfrozenOut:
        from rollout.engine.freezes import unfreeze

        done = unfreeze(self._runtime(), target, kind)
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
                    session, spec, member, starts, ends, datetime.now(UTC), role, replaces
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
        actor = f"cli:{getpass.getuser()}@{socket.gethostname()}"
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
                    session, Scope(scope), datetime.now(UTC), services, team, note, environments
                )
        except TokenError as error:
            raise BackendError(str(error)) from None
        return TokenCreated(token=views.token_view(info), secret=secret)

    def revoke_token(self, token_id: int) -> TokenView:
        from rollout.store.tokens import revoke_token

        with transaction(self._url()) as session:
            info = revoke_token(session, token_id, datetime.now(UTC))
        if info is None:
            raise BackendError(f"no token {token_id}")
        return views.token_view(info)

    def tokens(self) -> list[TokenView]:
        from rollout.store.tokens import list_tokens

        with reading(self._url()) as session:
            return [views.token_view(t) for t in list_tokens(session)]
