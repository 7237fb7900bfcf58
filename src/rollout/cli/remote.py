"""The CLI's remote mode: with ROLLOUT_API_URL and ROLLOUT_TOKEN set, every operation asks
the API over HTTP and parses the read models it answers with; the database is never opened."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

import httpx
from pydantic import BaseModel

from rollout.api.schemas import (
    AnsweredOut,
    FreezeList,
    FreezeOut,
    HygieneOut,
    OnCallOut,
    OverrideOut,
    PageList,
    PageView,
    RecalledOut,
    RolloutDetailView,
    RolloutList,
    RolloutSummary,
    SteeredOut,
    SubmittedOut,
    TokenCreated,
    TokenList,
    TokenView,
    UnfrozenOut,
)
from rollout.api.schemas.fleet import FleetView
from rollout.api.schemas.history import EventList
from rollout.api.schemas.status import RolloutStatus
from rollout.cli.backend import BackendError, NotFound, PageResponse, RolloutRef, Steering
from rollout.json_types import JsonObject, JsonValue
from rollout.quoting import cut, masked_url

TIMEOUT = httpx.Timeout(30.0, connect=5.0)

Model = TypeVar("Model", bound=BaseModel)

# A request body and a query string, as the CLI sends them.
Body = Mapping[str, JsonValue]
Query = Mapping[str, str | int | float | None]


class RemoteError(BackendError):
    """The API refused, or could not be reached; the message says why in one line."""


class RemoteNotFound(RemoteError, NotFound):
    """The API answered 404."""


# A long poll asks for less than the client's read timeout, so the answer always comes first.
LONG_POLL = timedelta(seconds=25)
# The event stream sends a comment every few seconds of quiet: a longer silence is a fault.
STREAM_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
REOPEN_SECONDS = 1.0


@dataclass(frozen=True)
class Remote:
    url: str
    token: str

    @classmethod
    def from_environment(cls) -> Remote | None:
        """Remote mode when both are set; one without the other is a mistake, said so."""
        url = os.environ.get("ROLLOUT_API_URL", "").strip()
        token = os.environ.get("ROLLOUT_TOKEN", "").strip()
        if not url and not token:
            return None
        if not url or not token:
            missing = "ROLLOUT_TOKEN" if url else "ROLLOUT_API_URL"
            raise RemoteError(
                f"remote mode needs ROLLOUT_API_URL and ROLLOUT_TOKEN: {missing} is not set"
            )
        try:
            usable = url.startswith(("http://", "https://")) and bool(httpx.URL(url).host)
        except httpx.InvalidURL:
            usable = False
        if not usable:
            raise RemoteError(
                f"ROLLOUT_API_URL {masked_url(url)!r} is not an http:// or https:// URL "
                "(such as https://rollout.example)"
            )
        return cls(url.rstrip("/"), token)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Body | None = None,
        params: Query | None = None,
    ) -> httpx.Response:
        """The API's answer if it is a success; RemoteError with its message otherwise."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = httpx.request(
                method,
                self.url + path,
                json=json,
                params=query,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=TIMEOUT,
            )
        except httpx.HTTPError as error:
            where = masked_url(self.url)
            raise RemoteError(f"cannot reach the API at {where}: {cut(str(error), 200)}") from None
        if response.is_success:
            return response
        raise _refusal(response)


def _refusal(response: httpx.Response) -> RemoteError:
    refusal = RemoteNotFound if response.status_code == 404 else RemoteError
    return refusal(f"{_message(response)} (HTTP {response.status_code})")


def _message(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, str) and detail:
        return detail
    return response.reason_phrase or "the API refused"


class RemoteBackend:
    """Every operation through the API, which holds the database and the fleet config."""

    def __init__(self, remote: Remote) -> None:
        self.remote = remote

    def _ask(
        self,
        model: type[Model],
        method: str,
        path: str,
        *,
        json: Body | None = None,
        params: Query | None = None,
    ) -> Model:
        return model.model_validate(
            self.remote.request(method, path, json=json, params=params).json()
        )

    def submit(self, service: str, version: str, digest: str | None) -> SubmittedOut:
        body = {"service": service, "version": version, "digest": digest}
        return self._ask(SubmittedOut, "POST", "/v1/releases", json=body)

    def list_rollouts(
        self,
        *,
        service: str | None,
        state: str | None,
        stage: str | None,
        team: str | None,
        limit: int,
    ) -> list[RolloutSummary]:
        params = {"service": service, "state": state, "stage": stage, "team": team}
        answer = self._ask(RolloutList, "GET", "/v1/rollouts", params={**params, "limit": limit})
        return answer.rollouts

    def show_rollout(self, rollout_id: int) -> RolloutDetailView:
        return self._ask(RolloutDetailView, "GET", f"/v1/rollouts/{rollout_id}")

    def steer(self, rollout_id: int, action: Steering, reason: str | None) -> SteeredOut:
        body = {} if reason is None else {"reason": reason}
        return self._ask(SteeredOut, "POST", f"/v1/rollouts/{rollout_id}/{action}", json=body)

    def recall(self, service: str, version: str, reason: str | None) -> RecalledOut:
        body = {"service": service, "version": version, **({"reason": reason} if reason else {})}
        return self._ask(RecalledOut, "POST", "/v1/releases/recall", json=body)

    def freeze(self, target: str, until: str, reason: str, kind: str | None) -> FreezeOut:
        body: JsonObject = {"target": target, "until": until, "reason": reason}
        if kind is not None:
            body["kind"] = kind
        return self._ask(FreezeOut, "POST", "/v1/freezes", json=body)

    def unfreeze(self, target: str, kind: str | None) -> UnfrozenOut:
        return self._ask(UnfrozenOut, "DELETE", f"/v1/freezes/{target}", params={"kind": kind})

    def freezes(self) -> list[FreezeOut]:
        return self._ask(FreezeList, "GET", "/v1/freezes").freezes

    def oncall(self, team: str, at: datetime) -> OnCallOut:
        params = {"at": at.isoformat()}
        return self._ask(OnCallOut, "GET", f"/v1/teams/{team}/oncall", params=params)

    def override(
        self,
        team: str,
        member: str,
        starts: datetime,
        ends: datetime,
        role: str,
        replaces: str | None,
    ) -> OverrideOut:
        # A time typed without a zone is the reader's, as in local mode.
        body: JsonObject = {
            "member": member,
            "starts_at": starts.astimezone().isoformat(),
            "ends_at": ends.astimezone().isoformat(),
            "role": role,
        }
        if replaces is not None:
            body["replaces"] = replaces
        return self._ask(OverrideOut, "POST", f"/v1/teams/{team}/overrides", json=body)

    def pages(self, team: str | None, open_only: bool, limit: int) -> list[PageView]:
        params = {"team": team, "open": "true" if open_only else None, "limit": limit}
        return self._ask(PageList, "GET", "/v1/pages", params=params).pages

    def answer(
        self, page_id: int, response: PageResponse, note: str | None, to_team: str | None
    ) -> AnsweredOut:
        if response in ("acknowledge", "resolve"):
            return self._ask(AnsweredOut, "POST", f"/v1/pages/{page_id}/{response}")
        body: dict[str, str] = {"kind": response}
        if to_team:
            body["team"] = to_team
        if note:
            body["note"] = note
        return self._ask(AnsweredOut, "POST", f"/v1/pages/{page_id}/feedback", json=body)

    def hygiene(self, since: str, team: str | None, night_budget: float) -> HygieneOut:
        params = {"since": since, "team": team, "night_budget": night_budget}
        return self._ask(HygieneOut, "GET", "/v1/hygiene", params=params)

    def create_token(
        self,
        scope: str,
        services: list[str],
        team: str | None,
        note: str | None,
        environments: list[str],
    ) -> TokenCreated:
        # Each scope's body carries its own grant only: the API refuses fields it does not use.
        body: JsonObject = {"scope": scope}
        if scope == "pipeline":
            body["services"] = list[JsonValue](services)
        if scope == "team":
            body["team"] = team
        if scope == "agent":
            body["environments"] = list[JsonValue](environments)
        if note is not None:
            body["note"] = note
        return self._ask(TokenCreated, "POST", "/v1/tokens", json=body)

    def revoke_token(self, token_id: int) -> TokenView:
        return self._ask(TokenView, "POST", f"/v1/tokens/{token_id}/revoke")

    def tokens(self) -> list[TokenView]:
        return self._ask(TokenList, "GET", "/v1/tokens").tokens

    def history(self, service: str | None, rollout_id: int | None, since: str) -> EventList:
        params = {"service": service, "rollout": rollout_id, "since": since}
        return self._ask(EventList, "GET", "/v1/events", params=params)

    def force_promote(self, rollout_id: int, reason: str) -> SteeredOut:
        body: JsonObject = {"force": True, "reason": reason}
        return self._ask(SteeredOut, "POST", f"/v1/rollouts/{rollout_id}/promote", json=body)

    def skip(self, rollout_id: int, environment: str, reason: str) -> SteeredOut:
        body: JsonObject = {"environment": environment, "reason": reason}
        return self._ask(SteeredOut, "POST", f"/v1/rollouts/{rollout_id}/skip", json=body)

    def fleet(
        self,
        *,
        service: str | None,
        stage: str | None,
        environment: str | None,
        team: str | None,
    ) -> FleetView:
        params = {"service": service, "stage": stage, "environment": environment, "team": team}
        return self._ask(FleetView, "GET", "/v1/fleet", params=params)

    def rollout_status(
        self, rollout: RolloutRef, within: timedelta, wait: timedelta
    ) -> RolloutStatus:
        if isinstance(rollout, int):
            path = f"/v1/rollouts/{rollout}/status"
        else:
            path = f"/v1/releases/{rollout[0]}/{rollout[1]}/status"
        start = time.monotonic()
        status = self._ask(RolloutStatus, "GET", path, params=_waiting(within, timedelta(0)))
        # The API waits for us, a long poll at a time: no loop of quick requests here.
        while not status.verdict.settled:
            elapsed = timedelta(seconds=time.monotonic() - start)
            if elapsed >= wait:
                break
            params = _waiting(within - elapsed, min(wait - elapsed, LONG_POLL))
            path = f"/v1/rollouts/{status.id}/status"
            status = self._ask(RolloutStatus, "GET", path, params=params)
        return status

    def rollout_changes(self, rollout_id: int, within: timedelta) -> Iterator[RolloutStatus | None]:
        url = f"{self.remote.url}/v1/rollouts/{rollout_id}/events"
        headers = {"Authorization": f"Bearer {self.remote.token}", "Accept": "text/event-stream"}
        start = time.monotonic()
        final, opened = False, False
        # A stream that ends before the final state (the API restarted) is opened again,
        # after a pause: a proxy that cuts every stream at once must not make a busy loop.
        while not final:
            if opened:
                time.sleep(REOPEN_SECONDS)
            opened = True
            left = within - timedelta(seconds=time.monotonic() - start)
            params = {"within": _seconds(left)}
            try:
                with httpx.stream(
                    "GET", url, params=params, headers=headers, timeout=STREAM_TIMEOUT
                ) as response:
                    if not response.is_success:
                        response.read()
                        raise _refusal(response)
                    for line in response.iter_lines():
                        if line.startswith("data:"):
                            status = RolloutStatus.model_validate_json(line.removeprefix("data:"))
                            final = status.final
                            yield status
                        elif line.startswith(":"):
                            yield None  # a keep-alive: the caller may look at its clock
            except httpx.HTTPError as error:
                raise RemoteError(f"the API's event stream broke off: {error}") from None


def _seconds(duration: timedelta) -> str:
    return f"{max(duration.total_seconds(), 0):.3f}s"


def _waiting(within: timedelta, wait: timedelta) -> Query:
    return {"within": _seconds(within), "wait": _seconds(wait)}
