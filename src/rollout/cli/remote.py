"""The CLI's remote mode: with ROLLOUT_API_URL and ROLLOUT_TOKEN set, commands ask the API
over HTTP instead of opening the database."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import httpx

TIMEOUT = httpx.Timeout(30.0, connect=5.0)


class RemoteError(Exception):
    """The API refused, or could not be reached; the message says why in one line."""


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
        return cls(url.rstrip("/"), token)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
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
            raise RemoteError(f"cannot reach the API at {self.url}: {error}") from None
        if response.is_success:
            return response
        raise RemoteError(f"{_message(response)} (HTTP {response.status_code})")


def _message(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, str) and detail:
        return detail
    return response.reason_phrase or "the API refused"
