"""The fleet config: example configs load, and every kind of mistake is reported precisely."""

from __future__ import annotations

import re
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from rollout.config import (
    NAME_PATTERN,
    VERSION_PATTERN,
    ConfigError,
    ConfigProblem,
    Fleet,
    HttpGate,
    Requirement,
    SoakGate,
    format_duration,
    load_fleet,
    parse_duration,
)
from rollout.config.slow_io import longer_than_lease

ROOT = Path(__file__).resolve().parents[2]

# A minimal valid fleet that tests extend with one mistake at a time.
BASE = """\
teams:
  - name: payments
stages:
  - name: canary
  - name: production
environments:
  - name: canary-1
    stage: canary
    driver: {type: simulated}
  - name: prod-1
    stage: production
    driver: {type: simulated}
services:
  - name: checkout
    team: payments
"""


def write(tmp_path: Path, text: str, name: str = "fleet.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(path: Path) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        load_fleet(path)
    return caught.value.problems


def only_problem(path: Path) -> ConfigProblem:
    problems = problems_of(path)
    assert len(problems) == 1, problems
    return problems[0]


# --- the example configs ------------------------------------------------------------------


def test_example_fleet_loads() -> None:
    fleet = load_fleet(ROOT / "config" / "fleet.yaml")
    assert len(fleet.teams) == 3
    assert len(fleet.services) == 4
    assert [s.name for s in fleet.stages] == ["canary", "staging", "production"]
    assert len(fleet.environments) == 8
    checkout = fleet.service("checkout")
    assert checkout.team == "payments"
    assert checkout.requires == [Requirement(service="billing-db", op=">=", version="2.3")]
    assert {g.type for s in fleet.services for g in s.gates} == {"http", "soak"}
    # `air_gapped: true` is a YAML bool; labels hold text.
    assert fleet.environment("prod-ap-vault").labels["air_gapped"] == "true"
    search = fleet.service("search-api")
    assert [e.name for e in fleet.environments_of(search)] == [
        "canary-eu-1",
        "staging-eu-1",
        "prod-eu-1",
        "prod-eu-2",
    ]


def test_demo_fleet_loads() -> None:
    fleet = load_fleet(ROOT / "config" / "demo.yaml")
    assert len(fleet.teams) == 4
    assert all(len(t.members) == 3 for t in fleet.teams)
    assert len(fleet.services) == 20
    assert len(fleet.environments) == 30
    assert [s.name for s in fleet.stages] == ["canary", "staging", "production"]
    per_stage = {s.name: 0 for s in fleet.stages}
    for environment in fleet.environments:
        per_stage[environment.stage] += 1
        assert environment.driver.type == "simulated"
        assert environment.driver.poll_interval == timedelta(seconds=0.1)
        assert environment.labels["region"] in {"eu-west", "us-east", "ap-south"}
    assert per_stage == {"canary": 3, "staging": 7, "production": 20}
    air_gapped = [e for e in fleet.environments if e.labels.get("air_gapped") == "true"]
    assert len(air_gapped) == 2
    assert all(e.stage == "production" for e in air_gapped)

    production = fleet.stage("production")
    assert production.parallelism == "50%"
    assert production.parallel_limit(20) == 10
    assert all(s.soak == timedelta(seconds=0.3) for s in fleet.stages)
    assert [fleet.severity_for_stage(s.name) for s in fleet.stages] == ["P3", "P2", "P0"]

    for service in fleet.services:
        fleet.team(service.team)  # every service has an owning team that exists
        http, soak = service.gates
        assert isinstance(http, HttpGate)
        assert http.url == "http://{environment}.sim/{service}/health"
        assert http.success_condition == "error_rate < 0.05"
        assert (http.interval, http.count) == (timedelta(seconds=0.2), 2)
        assert isinstance(soak, SoakGate)
        assert (soak.duration, soak.interval) == (timedelta(seconds=0.4), timedelta(seconds=0.2))
        assert soak.count == 3
        assert len(fleet.environments_of(service)) == 30

    assert fleet.simulation is not None
    assert fleet.simulation.initial_version == "1.0.0"
    bad = fleet.simulation.fault_for("checkout", "2.0.0-rc.bad")
    assert bad is not None and bad.health == "unhealthy"
    assert fleet.simulation.fault_for("checkout", "1.1.0") is None


def test_fleet_helpers() -> None:
    fleet = load_fleet(ROOT / "config" / "fleet.yaml")
    assert fleet.stage_index("canary") == 0
    assert fleet.stage_index("production") == 2
    assert fleet.team("search").name == "search"
    with pytest.raises(KeyError):
        fleet.service("nope")
    with pytest.raises(KeyError):
        fleet.team("nope")
    with pytest.raises(KeyError):
        fleet.stage_index("nope")
    names = [e.name for e in fleet.environments_of(fleet.service("checkout"))]
    assert names[0] == "canary-eu-1" and names[-1] == "prod-ap-vault"
    assert len(names) == 8
    assert fleet.stage("production").parallel_limit(8) == 2
    assert fleet.stage("production").parallel_limit(2) == 1  # at least one
    assert fleet.stage("staging").parallel_limit(5) is None
    assert fleet.stage("canary").parallel_limit(5) == 1


def test_severity_defaults_and_overrides(tmp_path: Path) -> None:
    one = load_fleet(
        write(
            tmp_path,
            """\
            stages: [{name: only}]
            environments: [{name: e, stage: only, driver: {type: simulated}}]
            """,
        )
    )
    assert one.severity_for_stage("only") == "P0"
    stages = "stages: [{name: a}, {name: b, page_severity: P1}, {name: c}, {name: d}]\n"
    envs = "".join(
        f"  - {{name: e-{s}, stage: {s}, driver: {{type: simulated}}}}\n" for s in "abcd"
    )
    four = load_fleet(write(tmp_path, stages + "environments:\n" + envs, "four.yaml"))
    assert [four.severity_for_stage(s) for s in "abcd"] == ["P3", "P1", "P2", "P0"]


def test_defaults(tmp_path: Path) -> None:
    extra = """\
    gates:
      - {name: health, type: http, url: "http://{environment}/health"}
      - {name: soak, type: soak, duration: 25s}
simulation:
  faults:
    - {version: "2.0.0", health: unhealthy}
    - {service: checkout}
"""
    fleet = load_fleet(write(tmp_path, BASE + extra))
    stage = fleet.stages[0]
    assert (stage.soak, stage.promote_share, stage.parallelism) == (timedelta(0), 1.0, None)
    driver = fleet.environments[0].driver
    assert (driver.poll_interval, driver.deploy_timeout) == (
        timedelta(seconds=1),
        timedelta(minutes=10),
    )
    http, soak = fleet.service("checkout").gates
    assert isinstance(http, HttpGate) and isinstance(soak, SoakGate)
    assert http.count == 1 and http.method == "GET" and http.expect_status == [200]
    assert http.no_data == "error" and http.timeout == timedelta(seconds=5)
    assert http.interval == timedelta(seconds=10) and http.initial_delay == timedelta(0)
    assert (http.failure_limit, http.inconclusive_limit, http.consecutive_error_limit) == (0, 0, 4)
    assert http.consecutive_successes is None and http.dry_run is False
    assert soak.count == 4  # ceil(25s / 10s) + 1
    assert fleet.environments_of(fleet.service("checkout"))[0].name == "canary-1"
    assert fleet.simulation is not None
    unhealthy, healthy = fleet.simulation.faults
    assert (unhealthy.service, unhealthy.error_rate) == ("*", 0.2)
    assert (healthy.version, healthy.error_rate, healthy.health) == ("*", 0.0, "healthy")
    # An exact version beats a service-wide rule.
    assert fleet.simulation.fault_for("checkout", "2.0.0") is unhealthy
    assert fleet.simulation.fault_for("checkout", "1.0.0") is healthy
    assert fleet.simulation.fault_for("billing", "1.0.0") is None


def test_json_dump_writes_durations_as_text() -> None:
    fleet = load_fleet(ROOT / "config" / "demo.yaml")
    dumped = fleet.model_dump(mode="json")
    assert dumped["stages"][0]["soak"] == "300ms"
    assert dumped["services"][0]["gates"][1]["duration"] == "400ms"
    assert Fleet.model_validate(dumped) == fleet


# --- mistakes -------------------------------------------------------------------------------


def test_broken_config_reports_every_problem(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        teams:
          - name: payments
            members:
              - {name: alice, timezone: Mars/Olympus}
        stages:
          - name: canary
            parallelism: 0
          - name: production
        environments:
          - name: canary-1
            stage: canary
            driver: {type: simulated, poll_interval: ten}
          - name: prod-1
            stage: prod
            driver: {type: simulated}
        services:
          - name: checkout
            gates:
              - name: health
                type: http
                url: "http://{environment}/{svc}"
                intervl: 5s
          - name: billing
            team: finance
            requires: ["ghost >= 1.0"]
        """,
    )
    problems = problems_of(path)
    found = {(p.line, p.path, p.message) for p in problems}
    assert all(p.file == str(path) for p in problems)
    assert found == {
        (
            4,
            "teams[0].members[0].timezone",
            "unknown time zone 'Mars/Olympus' (use an IANA name like Europe/Berlin)",
        ),
        (7, "stages[0].parallelism", "parallelism must be at least 1, got 0"),
        (8, "stages[1]", "stage 'production' has no environment"),
        (
            12,
            "environments[0].driver.poll_interval",
            "invalid duration 'ten' (use e.g. 250ms, 30s, 5m, 1h30m)",
        ),
        (14, "environments[1].stage", "unknown stage 'prod' (stages: canary, production)"),
        (17, "services[0].team", "service 'checkout' has no owning team (field `team`)"),
        (
            21,
            "services[0].gates[0].url",
            "unknown placeholder '{svc}' in url (allowed: {service}, {version}, {environment}, "
            "{stage})",
        ),
        (
            22,
            "services[0].gates[0].intervl",
            "unknown field 'intervl' (did you mean 'interval'?)",
        ),
        (24, "services[1].team", "unknown team 'finance' (teams: payments)"),
        (
            25,
            "services[1].requires[0]",
            "unknown service 'ghost' (services: checkout, billing)",
        ),
    }
    # Sorted by line, and printed one per line as file:line: path: message.
    assert [p.line for p in problems] == sorted(p.line or 0 for p in problems)
    text = str(ConfigError(problems))
    assert len(text.splitlines()) == len(problems)
    assert f"{path}:12: environments[0].driver.poll_interval: invalid duration 'ten'" in text


def test_service_without_team(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace("    team: payments\n", ""))
    problem = only_problem(path)
    assert (problem.line, problem.path) == (14, "services[0].team")
    assert problem.message == "service 'checkout' has no owning team (field `team`)"
    # `team: null` is the same mistake.
    problem = only_problem(write(tmp_path, BASE.replace("team: payments", "team: null")))
    assert problem.message == "service 'checkout' has no owning team (field `team`)"


def test_unknown_field(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, BASE + "    owner: payments\n"))
    assert (problem.line, problem.path) == (16, "services[0].owner")
    assert problem.message.startswith("unknown field 'owner'")
    problem = only_problem(write(tmp_path, BASE + "servces: []\n"))
    assert (problem.line, problem.path) == (16, "servces")
    assert problem.message == "unknown field 'servces' (did you mean 'services'?)"


def test_bad_duration(tmp_path: Path) -> None:
    text = BASE.replace("  - name: canary\n", "  - name: canary\n    soak: 1 fortnight\n")
    problem = only_problem(write(tmp_path, text))
    assert str(problem) == (
        f"{tmp_path / 'fleet.yaml'}:5: stages[0].soak: "
        "invalid duration '1 fortnight' (use e.g. 250ms, 30s, 5m, 1h30m)"
    )


def test_bad_condition(tmp_path: Path) -> None:
    gates = """\
    gates:
      - name: health
        type: http
        url: "http://{environment}/health"
        failure_condition: "error_rate >"
"""
    problem = only_problem(write(tmp_path, BASE + gates))
    assert (problem.line, problem.path) == (20, "services[0].gates[0].failure_condition")
    assert problem.message.startswith("invalid condition: ")
    assert "'error_rate >'" in problem.message


def test_gate_mistakes(tmp_path: Path) -> None:
    gates = """\
    gates:
      - {name: a, type: soak, duration: 1m, count: 3}
      - {name: a, type: http, url: "ftp://x"}
      - {name: c, type: magic}
      - {name: d, type: soak, duration: 0s, interval: 0s}
      - {name: e}
"""
    problems = problems_of(write(tmp_path, BASE + gates))
    found = {(p.line, p.path, p.message.split(":")[0]) for p in problems}
    assert found == {
        (17, "services[0].gates[0]", "`count` is not allowed on a soak gate"),
        (
            18,
            "services[0].gates[1].name",
            "duplicate gate name 'a' (first at services[0].gates[0])",
        ),
        (18, "services[0].gates[1].url", "url 'ftp"),
        (19, "services[0].gates[2]", "unknown gate type 'magic' (expected"),
        (20, "services[0].gates[3].duration", "duration must be greater than 0s, got '0s'"),
        (20, "services[0].gates[3].interval", "duration must be greater than 0s, got '0s'"),
        (21, "services[0].gates[4].type", "missing required field"),
    }


def test_unknown_stage_and_duplicates(tmp_path: Path) -> None:
    text = BASE + "  - name: checkout\n    team: payments\n"
    text = text.replace("stage: production", "stage: prod")
    problems = problems_of(write(tmp_path, text))
    found = {(p.line, p.path, p.message) for p in problems}
    assert found == {
        (5, "stages[1]", "stage 'production' has no environment"),
        (11, "environments[1].stage", "unknown stage 'prod' (stages: canary, production)"),
        (16, "services[1].name", "duplicate service name 'checkout' (first at services[0])"),
    }


def test_requirements(tmp_path: Path) -> None:
    text = BASE + '    requires: ["checkout >= 1", "billing-db>=2.3", "nonsense"]\n'
    problems = problems_of(write(tmp_path, text))
    assert [(p.path, p.message.split(" (")[0].split(":")[0]) for p in problems] == [
        ("services[0].requires[0]", "service 'checkout' cannot require itself"),
        ("services[0].requires[1]", "unknown service 'billing-db'"),
        ("services[0].requires[2]", "invalid requirement 'nonsense'"),
    ]
    assert Requirement.model_validate(" billing-db  != 2.3.1-rc.1 ") == Requirement(
        service="billing-db", op="!=", version="2.3.1-rc.1"
    )
    assert str(Requirement.model_validate("a<1")) == "a < 1"


def test_labels_and_selector(tmp_path: Path) -> None:
    text = BASE.replace(
        "    stage: production\n",
        "    stage: production\n    labels: {air_gapped: true, zone: 3, Bad: x}\n",
    )
    problem = only_problem(write(tmp_path, text))
    assert problem.path == "environments[1].labels.Bad"
    assert problem.message.startswith("invalid label key 'Bad'")
    text = text.replace(", Bad: x", "") + "    environments: {labels: {air_gapped: true}}\n"
    fleet = load_fleet(write(tmp_path, text))
    assert fleet.environments[1].labels == {"air_gapped": "true", "zone": "3"}
    assert [e.name for e in fleet.environments_of(fleet.services[0])] == ["prod-1"]


def test_versions_must_be_quoted(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, BASE + "simulation: {initial_version: 1.10}\n"))
    assert problem.path == "simulation.initial_version"
    assert "quoted string" in problem.message
    fleet = load_fleet(write(tmp_path, BASE + 'simulation: {initial_version: "1.10"}\n'))
    assert fleet.simulation is not None and fleet.simulation.initial_version == "1.10"


def test_yaml_syntax_error(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, BASE + "  - name: [unclosed\n"))
    assert problem.line == 17 and problem.path == ""
    assert problem.message.startswith("invalid YAML: ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("# only a comment\n", "the file is empty"),
        ("- a\n- b\n", "expected a mapping with keys"),
        ("just text\n", "expected a mapping with keys"),
        ("a: 1\n---\nb: 2\n", "invalid YAML: expected a single document"),
    ],
)
def test_not_a_fleet(tmp_path: Path, text: str, message: str) -> None:
    problem = only_problem(write(tmp_path, text))
    assert problem.message.startswith(message)


def test_missing_file_and_empty_directory(tmp_path: Path) -> None:
    problem = only_problem(tmp_path / "nope.yaml")
    assert (problem.file, problem.line, problem.message) == (
        str(tmp_path / "nope.yaml"),
        None,
        "no such file",
    )
    assert str(problem) == f"{tmp_path / 'nope.yaml'}: no such file"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no *.yaml" in only_problem(empty).message


def test_directory_merging(tmp_path: Path) -> None:
    write(
        tmp_path, "teams: [{name: payments}, {name: search}]\nstages: [{name: canary}]\n", "a.yaml"
    )
    write(
        tmp_path,
        """\
        stages: [{name: production}]
        environments:
          - {name: c1, stage: canary, driver: {type: simulated}}
          - {name: p1, stage: production, driver: {type: simulated}}
        """,
        "b.yml",
    )
    write(tmp_path, "services: [{name: checkout, team: payments}]\n", "c.yaml")
    write(tmp_path, "simulation: {initial_version: '1.0.0'}\n", "d.yaml")
    (tmp_path / "notes.txt").write_text("not config")
    fleet = load_fleet(tmp_path)
    assert [s.name for s in fleet.stages] == ["canary", "production"]
    assert [t.name for t in fleet.teams] == ["payments", "search"]
    assert [e.name for e in fleet.environments_of(fleet.service("checkout"))] == ["c1", "p1"]
    assert fleet.simulation is not None and fleet.simulation.initial_version == "1.0.0"

    # Problems name the file and the position within it, not within the merged whole.
    write(
        tmp_path,
        """\
        services:
          - name: billing
            team: finance
        simulation: {}
        """,
        "e.yaml",
    )
    problems = problems_of(tmp_path)
    assert {(Path(p.file).name, p.line, p.path, p.message) for p in problems} == {
        ("e.yaml", 3, "services[0].team", "unknown team 'finance' (teams: payments, search)"),
        ("e.yaml", 4, "simulation", f"simulation is already defined in {tmp_path / 'd.yaml'}"),
    }


def test_model_validate_reports_locations_too() -> None:
    data = {
        "stages": [{"name": "canary"}],
        "environments": [
            {"name": "e", "stage": "nope", "driver": {"type": "simulated", "poll_interval": "x"}}
        ],
    }
    with pytest.raises(ValidationError) as caught:
        Fleet.model_validate(data)
    locs = {tuple(e["loc"]) for e in caught.value.errors()}
    assert ("environments", 0, "stage") in locs
    assert ("stages", 0) in locs
    assert ("environments", 0, "driver", "simulated", "poll_interval") in locs


def test_patterns() -> None:
    assert re.fullmatch(NAME_PATTERN, "billing-db")
    assert not re.fullmatch(NAME_PATTERN, "Billing")
    assert not re.fullmatch(NAME_PATTERN, "a" * 64)
    assert re.fullmatch(VERSION_PATTERN, "2.0.0-rc.1+build.5")
    assert not re.fullmatch(VERSION_PATTERN, "-1")


# --- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("250ms", timedelta(milliseconds=250)),
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h", timedelta(hours=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("0.5s", timedelta(milliseconds=500)),
        ("1m 30s", timedelta(seconds=90)),
        (0, timedelta(0)),
        (1.5, timedelta(seconds=1.5)),
        (0.1, timedelta(milliseconds=100)),
        ("10", timedelta(seconds=10)),
    ],
)
def test_parse_duration(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["ten", "", "-5s", -1, "1x", "30s5m", "1h1h", True, None, [1]])
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=100_000)))
def test_durations_round_trip(value: timedelta) -> None:
    text = format_duration(value)
    assert parse_duration(text) == value
    # The bare seconds form reads back the same.
    seconds = value.days * 86_400 + value.seconds
    assert parse_duration(f"{seconds}.{value.microseconds:06d}") == value


@given(st.integers(min_value=0, max_value=10**9))
def test_bare_seconds(seconds: int) -> None:
    assert parse_duration(seconds) == timedelta(seconds=seconds)
    assert parse_duration(format_duration(timedelta(seconds=seconds))) == timedelta(seconds=seconds)


# --- robustness -------------------------------------------------------------------------------

_yaml_ish = st.text(
    alphabet=st.sampled_from(list("abcdefgh:-[]{}\"'|>&*!#%@`, \n\t0123456789.")), max_size=200
)
_fragments = st.lists(
    st.sampled_from(
        [
            "teams:\n",
            "stages:\n",
            "  - name: canary\n",
            "    soak: 5x\n",
            "environments:\n",
            "  - {name: e, stage: canary, driver: {type: simulated}}\n",
            "services:\n",
            "  - {name: s, team: t, gates: [{name: g, type: soak, duration: 1s}]}\n",
            "    gates: [{type: http}]\n",
            "simulation: {faults: [{service: '*'}]}\n",
            "  labels: {a: [1]}\n",
            "- x\n",
            "&a [*a]\n",
            ": :\n",
        ]
    ),
    max_size=12,
).map("".join)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.one_of(st.text(max_size=300), _yaml_ish, _fragments))
def test_arbitrary_text_only_raises_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        load_fleet(path)
    except ConfigError as error:
        assert error.problems
        assert all(p.file == str(path) for p in error.problems)
        str(error)


def test_maintenance_windows(tmp_path: Path) -> None:
    window = '[{days: [mon, fri], start: "22:00", end: "02:00", zone: Europe/Berlin}]'
    text = (
        BASE.replace("    stage: production\n", f"    stage: production\n    windows: {window}\n")
        + f"    windows: {window}\n"
    )
    fleet = load_fleet(write(tmp_path, text))
    assert fleet.environment("prod-1").windows == fleet.service("checkout").windows
    (loaded,) = fleet.service("checkout").windows
    assert (loaded.days, str(loaded.start), str(loaded.end)) == (
        ["mon", "fri"],
        "22:00:00",
        "02:00:00",
    )

    mistakes = (
        '    windows: [{days: [mon], start: "09:00", end: 16:00, zone: UTC}]\n'
        '    windows: [{days: [mon], start: "09:00", end: "09:00", zone: UTC}]\n'
        '    windows: [{days: [monday], start: "09:00", end: "10:00", zone: Mars/Olympus}]\n'
    ).splitlines(keepends=True)
    found = []
    for mistake in mistakes:
        found += [(p.path, p.message) for p in problems_of(write(tmp_path, BASE + mistake))]
    assert [path for path, _ in found] == [
        "services[0].windows[0].end",
        "services[0].windows[0]",
        "services[0].windows[0].days[0]",
        "services[0].windows[0].zone",
    ]
    assert "quoted string" in found[0][1] and "960" in found[0][1]
    assert "no length" in found[1][1]
    assert "unknown time zone 'Mars/Olympus'" in found[3][1]


def test_windows_that_never_overlap_are_a_warning(tmp_path: Path) -> None:
    morning = '[{days: [mon], start: "06:00", end: "08:00", zone: UTC}]'
    evening = '[{days: [mon, tue], start: "18:00", end: "20:00", zone: Europe/Berlin}]'
    text = (
        BASE.replace("    stage: production\n", f"    stage: production\n    windows: {evening}\n")
        + f"    windows: {morning}\n"
    )
    fleet = load_fleet(write(tmp_path, text))
    assert _beyond_teams(fleet.warnings()) == [
        "services[0].windows: never overlap the windows of environment prod-1; checkout would "
        "never upgrade there"
    ]
    overlapping = text.replace('end: "08:00"', 'end: "18:30"')
    assert _beyond_teams(load_fleet(write(tmp_path, overlapping)).warnings()) == []


def _beyond_teams(warnings: list[str]) -> list[str]:
    """BASE's team has neither rotations nor channels; the warnings besides those two."""
    return [w for w in warnings if not w.startswith("teams[")]


def test_a_team_without_rotations_or_channels_is_a_warning(tmp_path: Path) -> None:
    bare = load_fleet(write(tmp_path, BASE)).warnings()
    assert bare == [
        "teams[0]: payments has no rotations: its pages go to the whole team, no one person "
        "is on call",
        "teams[0]: payments has no channels: its pages are recorded but reach no one",
    ]
    reachable = BASE.replace(
        "  - name: payments\n",
        "  - name: payments\n"
        "    members: [{name: A, timezone: UTC}, {name: B, timezone: UTC},\n"
        "              {name: C, timezone: UTC}]\n"
        "    rotations:\n"
        "      primary: {members: [A, B, C], shift: 7d, start: 2026-01-05, timezone: UTC}\n"
        "      secondary: {members: [B, C, A], shift: 7d, start: 2026-01-05, timezone: UTC}\n"
        "    channels: [{type: webhook, url: {env: PAGE_HOOK}}]\n",
    )
    assert load_fleet(write(tmp_path, reachable)).warnings() == []


def test_waits_longer_than_the_lease_are_a_warning(tmp_path: Path) -> None:
    # Issue 13: a 30 s email timeout under a 30 s lease went unremarked. Renewing the lease
    # makes it safe; validate still says which waits hold a worker past a lease.
    text = (
        BASE.replace("  - name: payments\n", "  - name: payments\n    channels:\n")
        .replace(
            "    channels:\n",
            "    channels:\n"
            "      - {type: webhook, url: {env: HOOK}}\n"
            "      - {type: email, host: mail, port: 25, from: r@x.io, to: [o@x.io], "
            "timeout: 45s}\n",
        )
        .replace(
            "  - name: prod-1\n    stage: production\n    driver: {type: simulated}\n",
            "  - name: prod-1\n    stage: production\n"
            "    driver: {type: http, url: 'http://agent', request_timeout: 1m}\n",
        )
        + "    gates:\n"
        + "      - {name: judge, type: webhook, url: 'http://judge', timeout: 40s}\n"
        + "      - {name: soak, type: soak, duration: 10m}\n"
    )
    fleet = load_fleet(write(tmp_path, text))

    assert longer_than_lease(fleet, timedelta(seconds=30)) == [
        "teams[0].channels[1]: timeout 45s is longer than the lease (ROLLOUT_LEASE_SECONDS, "
        "30s); its page delivery renews the lease while it waits, and holds a worker that long",
        "environments[1].driver: request_timeout 1m is longer than the lease "
        "(ROLLOUT_LEASE_SECONDS, 30s); its step renews the lease while it waits, and holds a "
        "worker that long",
        "services[0].gates[0]: timeout 40s is longer than the lease (ROLLOUT_LEASE_SECONDS, "
        "30s); its measurement renews the lease while it waits, and holds a worker that long",
    ]
    assert longer_than_lease(fleet, timedelta(minutes=1)) == []  # equal is not longer
    assert longer_than_lease(load_fleet(write(tmp_path, BASE)), timedelta(seconds=1)) == []


# --- channels -------------------------------------------------------------------------------


def _with_channels(*channels: str) -> str:
    lines = "".join(f"      - {channel}\n" for channel in channels)
    return BASE.replace("  - name: payments\n", f"  - name: payments\n    channels:\n{lines}")


def test_channel_timeouts_are_durations_and_timeout_s_still_reads(tmp_path: Path) -> None:
    fleet = load_fleet(
        write(
            tmp_path,
            _with_channels(
                "{type: webhook, url: {env: HOOK}, timeout: 2500ms}",
                "{type: slack, webhook_url: {file: /run/slack}, timeout_s: 7}",  # deprecated
                "{type: email, host: mail, port: 25, from: r@x.io, to: [o@x.io]}",
                "{type: pagerduty, routing_key: {env: PD}, name: pd-payments}",
            ),
        )
    )
    timeouts = [channel.timeout for channel in fleet.teams[0].channels]
    assert timeouts == [
        timedelta(milliseconds=2500),
        timedelta(seconds=7),
        timedelta(seconds=30),  # email's default
        timedelta(seconds=10),
    ]
    names = [channel.name for channel in fleet.teams[0].channels]
    assert names == [None, None, None, "pd-payments"]


@pytest.mark.parametrize(
    ("channel", "path", "message"),
    [
        (
            "{type: pagerduty, routing_key: R0UT1NGKEY}",
            "teams[0].channels[0].routing_key",
            "a secret is given by reference: {env: NAME} or {file: PATH}",
        ),
        (
            "{type: webhook, url: {env: A, file: /b}}",
            "teams[0].channels[0].url",
            "a secret reference names exactly one of `env` or `file`",
        ),
        ("{type: webhook, url: {env: A}, timeout: 0s}", "teams[0].channels[0].timeout", None),
        (
            "{type: webhook, url: {env: A}, timeout: 5s, timeout_s: 5}",
            "teams[0].channels[0]",
            "give `timeout` (a duration, e.g. 10s), not also `timeout_s`",
        ),
        (
            "{type: slack, webhook_url: {env: A}, timeout_s: fast}",
            "teams[0].channels[0]",
            "`timeout_s` must be a positive number of seconds (deprecated: `timeout: 10s`)",
        ),
        (
            "{type: email, host: mail, port: 25, from: r@x.io, to: []}",
            "teams[0].channels[0].to",
            "names no recipient",
        ),
        (
            "{type: email, host: mail, port: 25, from: r@x.io, to: [o@x.io], username: r}",
            "teams[0].channels[0]",
            "`username` and `password` go together",
        ),
        (
            "{type: alertmanager, url: 'ftp://am'}",
            "teams[0].channels[0].url",
            "must be an http(s) URL",
        ),
        (
            "{type: alertmanager, url: 'http://am', tiemout: 5s}",
            "teams[0].channels[0].tiemout",
            "unknown field 'tiemout' (did you mean 'timeout'?)",
        ),
        ("{type: pager}", "teams[0].channels[0]", "unknown channel type 'pager'"),
    ],
)
def test_channel_mistakes_name_file_line_path_and_field(
    tmp_path: Path, channel: str, path: str, message: str | None
) -> None:
    problem = only_problem(write(tmp_path, _with_channels(channel)))
    assert (problem.file, problem.line, problem.path) == (str(tmp_path / "fleet.yaml"), 4, path)
    if message is not None:
        assert problem.message.startswith(message), problem.message
    assert "R0UT1NGKEY" not in str(problem)  # an inline secret is never echoed
