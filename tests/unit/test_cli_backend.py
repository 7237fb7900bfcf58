"""The CLI's seam: the environment picks the backend, and both implement all of it."""

from __future__ import annotations

import inspect
from typing import NoReturn

import pytest

from rollout.cli.backend import Backend, BackendError, choose_backend
from rollout.cli.local import LocalBackend
from rollout.cli.remote import RemoteBackend, RemoteError


def _never() -> NoReturn:
    raise AssertionError("local mode read its settings before an operation needed them")


def test_the_environment_picks_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROLLOUT_API_URL", raising=False)
    monkeypatch.delenv("ROLLOUT_TOKEN", raising=False)
    assert isinstance(choose_backend(_never, _never), LocalBackend)
    monkeypatch.setenv("ROLLOUT_API_URL", "http://api.example:8000/")
    monkeypatch.setenv("ROLLOUT_TOKEN", "rollout_x")
    remote = choose_backend(_never, _never)
    assert isinstance(remote, RemoteBackend) and remote.remote.url == "http://api.example:8000"
    monkeypatch.delenv("ROLLOUT_TOKEN")
    with pytest.raises(BackendError, match="ROLLOUT_TOKEN is not set"):
        choose_backend(_never, _never)
    assert issubclass(RemoteError, BackendError)


@pytest.mark.parametrize("implementation", [LocalBackend, RemoteBackend])
def test_each_backend_has_every_operation_with_its_signature(implementation: type) -> None:
    wanted = {n for n in dir(Backend) if not n.startswith("_")}
    for name in wanted:
        ours = inspect.signature(getattr(implementation, name))
        assert ours == inspect.signature(getattr(Backend, name)), name
