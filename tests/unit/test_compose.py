"""docker-compose.yml and workers/Dockerfile agree with the schema, CLI, settings and config."""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from typer.testing import CliRunner

import rollout.cli
from rollout.config import load_fleet
from rollout.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "workers" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
# What the package build reads: the project table, its readme, the package itself.
BUILD_INPUTS = ("pyproject.toml", "README.md", "src")


def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def rollout_services() -> dict[str, dict[str, Any]]:
    """The services built from the rollout image (the YAML anchors already merged in)."""
    return {
        name: service
        for name, service in compose()["services"].items()
        if isinstance(service.get("build"), dict)
        and service["build"].get("dockerfile") == "workers/Dockerfile"
    }


def rollout_environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    assert isinstance(environment, dict), "write environment as a mapping"
    return {k: str(v) for k, v in environment.items() if k.upper().startswith("ROLLOUT_")}


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_compose_file_is_valid_against_the_compose_schema() -> None:
    # The Compose spec schema is vendored in check-jsonschema: no network needed.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            "docker-compose.yml",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_stack_has_its_processes() -> None:
    services = compose()["services"]
    assert {"postgres", "redis"} <= services.keys()
    assert {"migrate", "worker", "ticker"} <= rollout_services().keys()
    for name in ("worker", "ticker"):
        depends_on = services[name]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully", name
        assert depends_on["redis"]["condition"] == "service_healthy", name
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["db", "upgrade"]


def test_workers_and_ticker_come_back_after_a_failure() -> None:
    # A worker that cannot go on exits non-zero (tests/e2e/test_worker_exit.py); only a
    # restart policy brings it back. "no" would leave it down, and so would a policy that
    # is missing (Compose's default is "no").
    services = compose()["services"]
    for name in ("worker", "ticker"):
        policy = services[name].get("restart", "no")
        assert policy in {"always", "unless-stopped"} or policy.startswith("on-failure"), name
    # The one-shot migration must not loop once it has succeeded.
    assert services["migrate"]["restart"] in {"no", "on-failure"}


runner = CliRunner()


def test_an_unknown_command_fails_the_help_check() -> None:
    # The check below would pass for anything if Typer answered --help for every argv.
    assert runner.invoke(rollout.cli.app, ["no-such-command", "--help"]).exit_code != 0
    assert runner.invoke(rollout.cli.app, ["worker", "--no-such-option", "--help"]).exit_code != 0


@pytest.mark.parametrize("name", sorted(rollout_services()))
def test_service_runs_a_real_rollout_command(name: str) -> None:
    service = rollout_services()[name]
    command = service["command"]
    assert isinstance(command, list), "write command as a list"
    assert all(isinstance(part, str) for part in command)
    # The image's entrypoint is `rollout`; the command holds its arguments.
    assert "entrypoint" not in service
    assert command[0] != "rollout", "the entrypoint already says rollout"
    result = runner.invoke(rollout.cli.app, [*command, "--help"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", sorted(rollout_services()))
def test_service_environment_names_settings_fields(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = rollout_environment(rollout_services()[name])
    assert environment, "a rollout service without ROLLOUT_* settings would use SQLite"
    fields = set(Settings.model_fields)
    for variable in environment:
        field = variable.lower().removeprefix("rollout_")
        assert field in fields, f"{variable} is not a rollout.settings.Settings field"
    # And the values parse as the settings' types.
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    settings = Settings()
    for variable, value in environment.items():
        assert str(getattr(settings, variable.lower().removeprefix("rollout_"))) == value


@pytest.mark.parametrize("name", sorted(rollout_services()))
def test_service_points_at_the_stack_and_not_at_sqlite(name: str) -> None:
    services = compose()["services"]
    environment = rollout_environment(rollout_services()[name])
    for variable in ("ROLLOUT_DATABASE_URL", "ROLLOUT_SIMULATOR_URL"):
        url = urlsplit(environment[variable])
        assert url.scheme == "postgresql+psycopg", variable
        assert url.hostname in services, f"{variable} names no service: {url.hostname}"
    broker = urlsplit(environment["ROLLOUT_BROKER_URL"])
    assert broker.scheme == "redis"
    assert broker.hostname in services


def host_path(service: dict[str, Any], container_path: str) -> Path:
    """Map a path inside the container back to the repository through the bind mounts."""
    target = PurePosixPath(container_path)
    for volume in service.get("volumes", []):
        assert isinstance(volume, str), "write volumes in the short form"
        source, mount, *options = volume.split(":")
        if not source.startswith("."):
            continue  # a named volume
        if target == PurePosixPath(mount) or PurePosixPath(mount) in target.parents:
            assert options == ["ro"], f"mount {volume} read-only"
            return ROOT / source / target.relative_to(mount)
    raise AssertionError(f"{container_path} is not mounted from the repository")


@pytest.mark.parametrize("name", sorted(rollout_services()))
def test_the_config_the_service_reads_loads(name: str) -> None:
    service = rollout_services()[name]
    path = host_path(service, rollout_environment(service)["ROLLOUT_CONFIG"])
    assert path.is_file(), path
    fleet = load_fleet(path)
    assert fleet.services


def test_dockerfile_copies_what_the_package_build_needs() -> None:
    instructions = dockerfile_instructions()
    copied: set[str] = set()
    for instruction, arguments in instructions:
        if instruction != "COPY":
            continue
        sources = [part for part in arguments.split() if not part.startswith("--")][:-1]
        copied |= {source.removeprefix("./").rstrip("/") for source in sources}
    missing = [path for path in BUILD_INPUTS if path not in copied]
    assert not missing, f"workers/Dockerfile does not COPY {missing}"
    for path in BUILD_INPUTS:
        assert (ROOT / path).exists(), path
    # And .dockerignore keeps none of them out of the build context.
    ignored = [
        line.strip().lstrip("/").rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "!"))
    ]
    for path in (*BUILD_INPUTS, "config"):
        hits = [pattern for pattern in ignored if fnmatch.fnmatch(path, pattern)]
        assert not hits, f".dockerignore excludes {path} ({hits})"


def test_dockerfile_runs_rollout_as_a_non_root_user() -> None:
    instructions = dict(dockerfile_instructions())
    assert json.loads(instructions["ENTRYPOINT"]) == ["rollout"]
    assert json.loads(instructions["CMD"]) == ["worker"]
    assert instructions["USER"] not in {"root", "0"}
    runs = [
        arguments for instruction, arguments in dockerfile_instructions() if instruction == "RUN"
    ]
    assert "pip install --no-cache-dir ." in runs


PROMETHEUS = ROOT / "prometheus.yml"


def _option(command: list[str], name: str) -> str | None:
    return command[command.index(name) + 1] if name in command else None


def _scraped() -> set[tuple[str, int]]:
    """(host, port) of every target prometheus.yml names, static or by DNS."""
    config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    targets: set[tuple[str, int]] = set()
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                targets.add((host, int(port)))
        for dns in job.get("dns_sd_configs", []):
            targets |= {(name, int(dns["port"])) for name in dns["names"]}
    return targets


def test_prometheus_scrapes_every_process_that_serves_metrics() -> None:
    services = compose()["services"]
    served: set[tuple[str, int]] = set()
    for name, service in rollout_services().items():
        command = service["command"]
        port = _option(command, "--metrics-port")
        if command[0] == "api":
            port = _option(command, "--port") or "8000"
        if port is not None:
            served.add((name, int(port)))
    assert {name for name, _ in served} >= {"api", "worker", "ticker"}
    assert _scraped() == served
    prometheus = services["prometheus"]
    assert f"./{PROMETHEUS.name}:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]


def test_every_process_prometheus_scrapes_listens_beyond_its_container() -> None:
    # /metrics binds to 127.0.0.1 unless told: Prometheus, in its own container, would
    # find every target down.
    for name, service in rollout_services().items():
        command = service["command"]
        if command[0] == "api":
            assert _option(command, "--host") == "0.0.0.0", name
        elif "--metrics-port" in command:
            assert _option(command, "--metrics-host") == "0.0.0.0", name


def test_traces_go_to_the_trace_viewer_of_the_stack() -> None:
    services = compose()["services"]
    for name, service in rollout_services().items():
        environment = service["environment"]
        assert environment["OTEL_TRACES_EXPORTER"] == "otlp", name
        endpoint = urlsplit(environment["OTEL_EXPORTER_OTLP_ENDPOINT"])
        assert endpoint.hostname in services, name
        assert endpoint.port == 4318, "OTLP over HTTP: the only protocol this build exports"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool: `make system-deps`")
def test_prometheus_config_is_valid() -> None:
    result = subprocess.run(
        ["promtool", "check", "config", "--syntax-only", str(PROMETHEUS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
