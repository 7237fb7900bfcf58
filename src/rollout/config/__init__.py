"""The fleet config: models of teams, stages, environments and services; YAML loading."""

from rollout.config.base import (
    LABEL_KEY_PATTERN,
    NAME_PATTERN,
    REQUIREMENT_OPERATORS,
    SEVERITIES,
    URL_PLACEHOLDERS,
    VERSION_PATTERN,
)
from rollout.config.environments import (
    Driver,
    Environment,
    EnvironmentSelector,
    SimulatedDriver,
    Stage,
)
from rollout.config.fleet import Fleet
from rollout.config.gates import Gate, HttpGate, SoakGate
from rollout.config.loading import ConfigError, ConfigProblem, load_fleet
from rollout.config.services import Requirement, Service
from rollout.config.simulation import Fault, Simulation
from rollout.config.teams import Member, Team
from rollout.durations import Duration, PositiveDuration, format_duration, parse_duration

__all__ = [
    "LABEL_KEY_PATTERN",
    "NAME_PATTERN",
    "REQUIREMENT_OPERATORS",
    "SEVERITIES",
    "URL_PLACEHOLDERS",
    "VERSION_PATTERN",
    "ConfigError",
    "ConfigProblem",
    "Driver",
    "Duration",
    "Environment",
    "EnvironmentSelector",
    "Fault",
    "Fleet",
    "Gate",
    "HttpGate",
    "Member",
    "PositiveDuration",
    "Requirement",
    "Service",
    "SimulatedDriver",
    "Simulation",
    "SoakGate",
    "Stage",
    "Team",
    "format_duration",
    "load_fleet",
    "parse_duration",
]
