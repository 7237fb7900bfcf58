"""The HTTP API: pipelines submit, teams read their rollouts and act on their pages,
operators read everything; every refusal is a 4xx with a one-line message."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, HTTPException, Path, Query, Response
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from rollout.api import reads
from rollout.api.auth import READERS, STEERERS, allow, check_team, forbidden, visible_team
from rollout.api.errors import ERRORS, RETRY_AFTER, install_error_handlers
from rollout.api.limits import MAX_BODY, BodyLimit, known_query_parameters, query_check
from rollout.api.schemas import (
    AgentTokenIn,
    AssignmentOut,
    EnvironmentList,
    ErrorOut,
    FeedbackIn,
    FreezeIn,
    FreezeKind,
    FreezeList,
    FreezeOut,
    Health,
    MisroutedIn,
    OnCallOut,
    PageList,
    PageView,
    PipelineTokenIn,
    Readiness,
    RecalledOut,
    RecallIn,
    RolloutDetailView,
    RolloutList,
    ServiceBrief,
    ServiceList,
    ServiceView,
    SteeredOut,
    SteerIn,
    SubmitIn,
    SubmittedOut,
    TeamTokenIn,
    TokenCreated,
    TokenIn,
    TokenList,
    TokenView,
    UnfrozenOut,
)
from rollout.config import NAME_PATTERN, Fleet
from rollout.domain.oncall import Assignment
from rollout.domain.pages import PageAction
from rollout.domain.states import RolloutState
from rollout.engine import steering
from rollout.engine.freezes import (
    FreezeRefused,
    FreezeView,
    UnknownTarget,
    active_freezes,
    freeze,
    unfreeze,
)
from rollout.engine.outbox import on_call_now
from rollout.engine.recall import NoSuchRelease, recall
from rollout.engine.responding import Response as PageResponse
from rollout.engine.responding import ResponseRefused, respond
from rollout.engine.runtime import Runtime, utcnow
from rollout.engine.steering import NoSuchRollout, Steered, SteeringRefused
from rollout.engine.submission import SubmitError, paging_spec, submit
from rollout.observability import metrics, tracing
from rollout.store.database import engine_for, reading, transaction
from rollout.store.models import Page, Release
from rollout.store.tokens import (
    Scope,
    TokenError,
    TokenInfo,
    create_token,
    grant_problem,
    list_tokens,
    revoke_token,
)

# PostgreSQL's integer: a larger id is no row of ours, and must not reach the driver.
MAX_ID = 2**31 - 1

Id = Annotated[int, Path(ge=1, le=MAX_ID)]
NameQuery = Annotated[str | None, Query(pattern=NAME_PATTERN, max_length=63)]
Limit = Annotated[int, Query(ge=1, le=1000)]
SteerBody = Annotated[SteerIn | None, Body()]
Steerer = Annotated[TokenInfo, Depends(allow(*STEERERS))]


def create_app(
    database_url: str,
    fleet: Fleet,
    *,
    broker_url: str | None = None,
    max_body: int = MAX_BODY,
    runtime: Runtime | None = None,
    now: Callable[[], datetime] = utcnow,
) -> FastAPI:
    """The application. `fleet` is the config submissions are planned with; `broker_url`
    is what /readyz checks besides the database (unchecked when None)."""
    known: dict[int, frozenset[str]] = {}  # filled in once every route is defined
    app = FastAPI(
        title="rollout",
        version="1",
        description="Submit releases, read rollouts, environments and pages, act on pages.",
        responses=ERRORS,
        dependencies=[Depends(query_check(known))],
    )
    app.state.database_url = database_url
    # Submission only writes rows; the ticker nudges workers, as for the CLI.
    runtime = runtime or Runtime(database_url, database_url, now=now)
    install_error_handlers(app)
    app.add_middleware(BodyLimit, limit=max_body)
    tracing.instrument_app(app)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        """Prometheus' text format; unauthenticated as scrapers are, and no label holds a
        secret or a payload."""
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @app.get("/healthz", tags=["health"])
    def healthz() -> Health:
        """The process answers."""
        return Health(status="ok")

    @app.get("/readyz", tags=["health"], responses={503: {"model": Readiness}})
    def readyz(response: Response) -> Readiness:
        """The database and the broker are reachable."""
        database = _check(lambda: _ping_database(database_url))
        broker = "not checked" if broker_url is None else _check(lambda: _ping_broker(broker_url))
        ready = database == "ok" and broker in ("ok", "not checked")
        if not ready:
            response.status_code = 503
            response.headers["Retry-After"] = RETRY_AFTER
        return Readiness(status="ready" if ready else "not ready", database=database, broker=broker)

    @app.post(
        "/v1/releases",
        tags=["releases"],
        status_code=201,
        responses={
            200: {"model": SubmittedOut, "description": "submitted before: the same release"},
            409: {
                "model": ErrorOut,
                "description": "the version was submitted with another digest",
            },
        },
    )
    def submit_release(
        body: SubmitIn,
        response: Response,
        token: Annotated[TokenInfo, Depends(allow(Scope.PIPELINE))],
    ) -> SubmittedOut:
        """Submit a release. The same service, version and digest again is the same release
        (200); the same version with another digest is refused (409)."""
        if body.service not in token.services:
            raise forbidden(
                f"this token may submit only {', '.join(token.services)}, not {body.service}"
            )
        if not _knows(fleet, body.service):
            raise HTTPException(404, f"unknown service {body.service!r}")
        try:
            result = submit(runtime, fleet, body.service, body.version, body.digest)
        except SubmitError as error:
            # Pattern checks ran above, so what submit() refuses is a clash with the record.
            metrics.SUBMISSIONS.labels("refused").inc()
            raise HTTPException(409, str(error)) from None
        metrics.SUBMISSIONS.labels("created" if result.created else "same").inc()
        with reading(database_url) as session:
            release = session.get(Release, result.release_id)
            digest = release.digest if release is not None else body.digest
        if not result.created:
            response.status_code = 200
        return SubmittedOut(
            release_id=result.release_id,
            rollout_id=result.rollout_id,
            service=body.service,
            version=body.version,
            digest=digest,
            created=result.created,
            superseded=list(result.superseded),
        )

    @app.post("/v1/releases/recall", tags=["releases"])
    def recall_release(body: Annotated[RecallIn, Body()], _: Steerer) -> RecalledOut:
        """Recall a release: no new upgrade to it anywhere; every environment running it rolls
        off to its last good version at once (no gates, no ramp). Recalling again changes
        nothing."""
        try:
            done = recall(runtime, body.service, body.version, body.reason)
        except NoSuchRelease as error:
            raise HTTPException(404, str(error)) from None
        return RecalledOut(
            release_id=done.release_id,
            changed=done.changed,
            rolling_off=list(done.rolling_off),
            message=done.message,
        )

    freeze_refused: dict[int | str, dict[str, Any]] = {
        409: {
            "model": ErrorOut,
            "description": "the time is not in the future, or the name is both an environment "
            "and a service",
        }
    }

    @app.post("/v1/freezes", tags=["freezes"], status_code=201, responses=freeze_refused)
    def post_freeze(body: Annotated[FreezeIn, Body()], _: Steerer) -> FreezeOut:
        """Freeze an environment or a service until a time: no new upgrade starts there, and
        `rollout show` says so. Freezing it again replaces the time and the reason."""
        try:
            done = freeze(runtime, fleet, body.target, body.until, body.reason, body.kind)
        except UnknownTarget as error:
            raise HTTPException(404, str(error)) from None
        except FreezeRefused as error:
            raise HTTPException(409, str(error)) from None
        return _freeze_out(done)

    @app.get("/v1/freezes", tags=["freezes"])
    def get_freezes(_: Annotated[TokenInfo, Depends(allow(*READERS))]) -> FreezeList:
        """The freezes in force, the soonest to end first."""
        with reading(database_url) as session:
            found = active_freezes(session, runtime.now())
        return FreezeList(freezes=[_freeze_out(f) for f in found])

    @app.delete("/v1/freezes/{target}", tags=["freezes"])
    def delete_freeze(
        target: Annotated[str, Path(pattern=NAME_PATTERN, max_length=63)],
        _: Steerer,
        kind: FreezeKind | None = None,
    ) -> UnfrozenOut:
        """Lift the freeze of an environment or a service (`kind` only for a name that is
        both); what it held is planned at once. Lifting a freeze that is not there changes
        nothing."""
        done = unfreeze(runtime, target, kind)
        return UnfrozenOut(changed=done.changed, message=done.message)

    @app.get("/v1/rollouts", tags=["rollouts"])
    def list_rollouts(
        token: Annotated[TokenInfo, Depends(allow(*READERS))],
        service: NameQuery = None,
        state: RolloutState | None = None,
        stage: NameQuery = None,
        team: NameQuery = None,
        limit: Limit = 50,
    ) -> RolloutList:
        """Rollouts, newest first. A team token sees its own team's only."""
        team = visible_team(token, team)
        with reading(database_url) as session:
            rows = reads.list_rollouts(
                session, service=service, state=state, stage=stage, team=team, limit=limit
            )
        return RolloutList(rollouts=[reads.summary_of(r) for r in rows])

    @app.get("/v1/rollouts/{rollout_id}", tags=["rollouts"])
    def show_rollout(
        rollout_id: Id, token: Annotated[TokenInfo, Depends(allow(*READERS))]
    ) -> RolloutDetailView:
        """A rollout: stages, upgrades, each gate's last value against its condition, pages."""
        with reading(database_url) as session:
            owner = reads.rollout_team(session, rollout_id)
            if owner is None:
                raise HTTPException(404, f"no rollout {rollout_id}")
            check_team(token, owner, f"rollout {rollout_id}")
            view = reads.show_rollout(session, rollout_id)
        assert view is not None
        return view

    steering_refused: dict[int | str, dict[str, Any]] = {
        409: {"model": ErrorOut, "description": "the rollout's state does not allow this"}
    }

    def _steer(act: Callable[[], Steered]) -> SteeredOut:
        try:
            done = act()
        except NoSuchRollout as error:
            raise HTTPException(404, str(error)) from None
        except SteeringRefused as error:
            raise HTTPException(409, str(error)) from None
        return SteeredOut(
            rollout_id=done.rollout_id,
            state=done.state,
            changed=done.changed,
            message=done.message,
            retried_from=done.retried_from,
        )

    @app.post("/v1/rollouts/{rollout_id}/pause", tags=["steering"], responses=steering_refused)
    def pause_rollout(rollout_id: Id, _: Steerer, body: SteerBody = None) -> SteeredOut:
        """Pause a running rollout: nothing new starts, upgrades in flight finish. Pausing a
        paused rollout changes nothing."""
        return _steer(lambda: steering.pause(runtime, rollout_id, _reason(body)))

    @app.post("/v1/rollouts/{rollout_id}/resume", tags=["steering"], responses=steering_refused)
    def resume_rollout(rollout_id: Id, _: Steerer, body: SteerBody = None) -> SteeredOut:
        """Resume a paused rollout; upgrades awaiting a decision (an inconclusive gate) pass."""
        return _steer(lambda: steering.resume(runtime, rollout_id, _reason(body)))

    @app.post("/v1/rollouts/{rollout_id}/abort", tags=["steering"], responses=steering_refused)
    def abort_rollout(rollout_id: Id, _: Steerer, body: SteerBody = None) -> SteeredOut:
        """Halt a running or paused rollout like a failure; upgrades awaiting a decision roll
        back. No page is sent. Aborting a halted rollout changes nothing."""
        return _steer(lambda: steering.abort(runtime, rollout_id, _reason(body)))

    @app.post("/v1/rollouts/{rollout_id}/retry", tags=["steering"], responses=steering_refused)
    def retry_rollout(rollout_id: Id, _: Steerer, body: SteerBody = None) -> SteeredOut:
        """Roll a failed rollout's release out again, planned from the current config, unless
        a newer rollout of the service exists. Answers with the new rollout."""
        return _steer(lambda: steering.retry(runtime, fleet, rollout_id))

    @app.post("/v1/rollouts/{rollout_id}/promote", tags=["steering"], responses=steering_refused)
    def promote_rollout(rollout_id: Id, _: Steerer, body: SteerBody = None) -> SteeredOut:
        """Skip the rest of the current stage's soak; only once the stage has passed."""
        return _steer(lambda: steering.promote(runtime, rollout_id))

    @app.get("/v1/environments", tags=["environments"])
    def list_environments(
        token: Annotated[TokenInfo, Depends(allow(*READERS))],
    ) -> EnvironmentList:
        """Every environment with the versions installed there (a team: its services')."""
        services = None
        if token.scope is Scope.TEAM:
            services = {s.name for s in fleet.services if s.team == token.team}
        with reading(database_url) as session:
            return EnvironmentList(environments=reads.environments(session, fleet, services))

    @app.get("/v1/services", tags=["services"])
    def list_services(
        token: Annotated[TokenInfo, Depends(allow(*READERS))],
        team: NameQuery = None,
    ) -> ServiceList:
        """The services of the fleet config and their owning teams."""
        team = visible_team(token, team)
        return ServiceList(
            services=[
                ServiceBrief(name=s.name, team=s.team)
                for s in fleet.services
                if team is None or s.team == team
            ]
        )

    @app.get("/v1/services/{name}", tags=["services"])
    def show_service(
        name: Annotated[str, Path(pattern=NAME_PATTERN, max_length=63)],
        token: Annotated[TokenInfo, Depends(allow(*READERS))],
    ) -> ServiceView:
        """A service: its team, gates, environments with installed versions, rollouts."""
        if not _knows(fleet, name):
            raise HTTPException(404, f"unknown service {name!r}")
        check_team(token, fleet.service(name).team, f"service {name}")
        with reading(database_url) as session:
            view = reads.service_view(session, fleet, name)
        assert view is not None
        return view

    @app.get("/v1/teams/{team}/oncall", tags=["on-call"])
    def team_oncall(
        team: Annotated[str, Path(pattern=NAME_PATTERN, max_length=63)],
        token: Annotated[TokenInfo, Depends(allow(*READERS))],
        at: Annotated[datetime | None, Query(description="ISO 8601 with a zone")] = None,
    ) -> OnCallOut:
        """Who is primary and secondary on call for a team at an instant (default: now), and
        why: the rotation, an override, or the rest rule."""
        if team not in {t.name for t in fleet.teams}:
            raise HTTPException(404, f"unknown team {team!r}")
        check_team(token, team, f"team {team}")
        spec = fleet.team(team)
        if spec.rotations is None:
            raise HTTPException(404, f"team {team!r} has no rotations in the fleet config")
        if at is not None and at.tzinfo is None:
            raise HTTPException(422, "at: give the time with its zone, e.g. +02:00 or Z")
        when = at or now()
        with reading(database_url) as session:
            on_call = on_call_now(session, paging_spec(spec), when)
        assert on_call is not None
        return OnCallOut(
            team=team,
            at=when,
            primary=_assignment(on_call.primary),
            secondary=_assignment(on_call.secondary),
        )

    @app.get("/v1/pages", tags=["pages"])
    def list_pages(
        token: Annotated[TokenInfo, Depends(allow(*READERS))],
        team: NameQuery = None,
        state: Annotated[str | None, Query(pattern=r"^[a-z_]{1,16}$")] = None,
        service: NameQuery = None,
        rollout_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
        limit: Limit = 100,
    ) -> PageList:
        """Pages, newest first. A team token sees its own team's only."""
        team = visible_team(token, team)
        with reading(database_url) as session:
            pages = reads.list_pages(
                session, team=team, state=state, service=service, rollout_id=rollout_id, limit=limit
            )
        return PageList(pages=pages)

    conflict: dict[int | str, dict[str, Any]] = {
        409: {"model": ErrorOut, "description": "the page is resolved already"}
    }

    @app.post("/v1/pages/{page_id}/acknowledge", tags=["pages"], responses=conflict)
    def acknowledge_page(
        page_id: Id, token: Annotated[TokenInfo, Depends(allow(*READERS))]
    ) -> PageView:
        """Acknowledge a page: someone is on it. Asking again changes nothing."""
        return _page_action(page_id, token, PageAction.ACKNOWLEDGE)

    @app.post("/v1/pages/{page_id}/resolve", tags=["pages"])
    def resolve_page(
        page_id: Id, token: Annotated[TokenInfo, Depends(allow(*READERS))]
    ) -> PageView:
        """Resolve a page. Asking again changes nothing."""
        return _page_action(page_id, token, PageAction.RESOLVE)

    @app.post("/v1/pages/{page_id}/feedback", tags=["pages"])
    def page_feedback(
        page_id: Id,
        body: Annotated[FeedbackIn, Body()],
        token: Annotated[TokenInfo, Depends(allow(*READERS))],
    ) -> PageView:
        """Tell whether the page was misrouted (and whose it was) or not actionable."""
        team = body.team if isinstance(body, MisroutedIn) else None
        if team is not None and team not in {t.name for t in fleet.teams}:
            raise HTTPException(404, f"unknown team {team!r}")
        to_paging = paging_spec(fleet.team(team)) if team is not None else None
        response = PageResponse.MISROUTED if team is not None else PageResponse.NOT_ACTIONABLE
        return _respond(page_id, token, response, note=body.note, to_team=team, to_paging=to_paging)

    def _page_action(page_id: int, token: TokenInfo, action: PageAction) -> PageView:
        return _respond(page_id, token, PageResponse(action.value))

    def _respond(
        page_id: int,
        token: TokenInfo,
        response: PageResponse,
        note: str | None = None,
        to_team: str | None = None,
        to_paging: dict[str, Any] | None = None,
    ) -> PageView:
        # The engine's rules: acknowledging stops escalation and tells the page's channels;
        # a misroute resolves it here and pages the right team.
        with transaction(database_url) as session:
            page = _page_for(session, page_id, token)
            try:
                respond(
                    session,
                    page,
                    response,
                    now(),
                    actor=f"token {token.id}",
                    token_id=token.id,
                    note=note,
                    to_team=to_team,
                    to_paging=to_paging,
                )
            except ResponseRefused as refused:
                raise HTTPException(409, str(refused)) from None
            return reads.page_view(page)

    @app.get("/v1/config", tags=["config"])
    def get_config(_: Annotated[TokenInfo, Depends(allow(Scope.ADMIN))]) -> dict[str, Any]:
        """The fleet config this API serves, as loaded and validated. Secrets appear only as
        the references the config names ({env} or {file}), never their values."""
        return fleet.model_dump(mode="json")

    @app.get("/v1/tokens", tags=["tokens"])
    def get_tokens(_: Annotated[TokenInfo, Depends(allow(Scope.ADMIN))]) -> TokenList:
        """Every token, revoked ones too; never a secret."""
        with reading(database_url) as session:
            return TokenList(tokens=[_token_view(t) for t in list_tokens(session)])

    @app.post("/v1/tokens", tags=["tokens"], status_code=201)
    def post_token(
        body: Annotated[TokenIn, Body()], _: Annotated[TokenInfo, Depends(allow(Scope.ADMIN))]
    ) -> TokenCreated:
        """Create a token; its secret is in this answer only."""
        services = body.services if isinstance(body, PipelineTokenIn) else []
        team = body.team if isinstance(body, TeamTokenIn) else None
        places = body.environments if isinstance(body, AgentTokenIn) else []
        problem = grant_problem(fleet, services, team, places)
        if problem is not None:
            raise HTTPException(404, problem)
        try:
            with transaction(database_url) as session:
                info, secret = create_token(
                    session, body.scope, now(), services, team, body.note, places
                )
        except TokenError as error:
            raise HTTPException(422, str(error)) from None
        return TokenCreated(token=_token_view(info), secret=secret)

    @app.post("/v1/tokens/{token_id}/revoke", tags=["tokens"])
    def post_revoke(
        token_id: Id, _: Annotated[TokenInfo, Depends(allow(Scope.ADMIN))]
    ) -> TokenView:
        """Revoke a token; it is refused from the next request on."""
        with transaction(database_url) as session:
            info = revoke_token(session, token_id, now())
        if info is None:
            raise HTTPException(404, f"no token {token_id}")
        return _token_view(info)

    from rollout.api.agents import agents_router

    app.include_router(agents_router(database_url, now))
    known.update(known_query_parameters(app))
    return app


def _freeze_out(view: FreezeView) -> FreezeOut:
    kind = "service" if view.kind == "service" else "environment"
    return FreezeOut(
        kind=kind,
        target=view.target,
        until=view.until,
        reason=view.reason,
        created_at=view.created_at,
        message=view.message,
    )


def _assignment(assignment: Assignment) -> AssignmentOut:
    return AssignmentOut(
        member=assignment.member.name, role=str(assignment.role), reason=assignment.reason
    )


def _page_for(session: Session, page_id: int, token: TokenInfo) -> Page:
    # Locked: two people acknowledging at once make one event, not two.
    page = session.scalars(select(Page).where(Page.id == page_id).with_for_update()).one_or_none()
    if page is None:
        raise HTTPException(404, f"no page {page_id}")
    check_team(token, page.team, f"page {page_id}")
    return page


def _reason(body: SteerIn | None) -> str | None:
    return None if body is None else body.reason


def _knows(fleet: Fleet, service: str) -> bool:
    return any(s.name == service for s in fleet.services)


def _token_view(info: TokenInfo) -> TokenView:
    return TokenView(
        id=info.id,
        scope=info.scope,
        services=list(info.services),
        team=info.team,
        note=info.note,
        created_at=info.created_at,
        revoked_at=info.revoked_at,
        environments=list(info.environments),
    )


def _check(probe: Callable[[], None]) -> str:
    try:
        probe()
    except Exception as error:
        # The class name only: a driver's message may carry a host or a user name.
        return f"unreachable ({type(error).__name__})"
    return "ok"


def _ping_database(url: str) -> None:
    with engine_for(url).connect() as connection:
        connection.execute(text("SELECT 1"))


def _ping_broker(url: str) -> None:
    from kombu.connection import Connection

    # kombu is untyped here; the call is a plain connect-and-close.
    with Connection(url, connect_timeout=2) as connection:  # type: ignore[no-untyped-call]
        connection.ensure_connection(max_retries=1, timeout=2)
