"""A channel from its config: the typed spec, or a mapping checked into one first."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import TypeAdapter, ValidationError

from rollout.paging.channels.message import Channel, ChannelConfigError
from rollout.paging.channels.receivers import (
    AlertmanagerChannel,
    EmailChannel,
    PagerDutyChannel,
    SlackChannel,
    WebhookChannel,
)
from rollout.plan.channels import (
    CHANNEL_TYPES,
    AlertmanagerChannelSpec,
    ChannelSpec,
    EmailChannelSpec,
    PagerDutyChannelSpec,
    SlackChannelSpec,
    WebhookChannelSpec,
)


def channel_from_config(spec: ChannelSpec | Mapping[str, object]) -> Channel:
    """The channel a spec describes; a mapping (a script's, a test's) is read as one first."""
    if isinstance(spec, Mapping):
        spec = read_channel_spec(spec)
    name = spec.name or spec.type
    timeout = spec.timeout.total_seconds()
    match spec:
        case WebhookChannelSpec():
            return WebhookChannel(url=spec.url, timeout=timeout, name=name)
        case PagerDutyChannelSpec():
            return PagerDutyChannel(
                routing_key=spec.routing_key, url=spec.url, timeout=timeout, name=name
            )
        case AlertmanagerChannelSpec():
            return AlertmanagerChannel(url=spec.url, timeout=timeout, name=name)
        case SlackChannelSpec():
            return SlackChannel(webhook_url=spec.webhook_url, timeout=timeout, name=name)
        case EmailChannelSpec():
            return EmailChannel(
                host=spec.host,
                port=spec.port,
                sender=spec.sender,
                recipients=spec.recipients,
                username=spec.username,
                password=spec.password,
                starttls=spec.starttls,
                timeout=timeout,
                name=name,
            )


_CHANNEL_SPEC: TypeAdapter[ChannelSpec] = TypeAdapter(ChannelSpec)


def read_channel_spec(data: Mapping[str, object]) -> ChannelSpec:
    """A channel spec from plain data, or a ChannelConfigError naming the field (the fleet
    config reports the same mistakes with its file and line: config/loading.py)."""
    try:
        return _CHANNEL_SPEC.validate_python(data)
    except ValidationError as error:
        raise ChannelConfigError(_first_problem(error, data.get("type"))) from None


def _first_problem(error: ValidationError, kind: object) -> str:
    # Never the input: it may be the very secret that should not be inline.
    problem = error.errors(include_input=False, include_url=False)[0]
    if problem["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return f"channel: `type` must be one of {', '.join(CHANNEL_TYPES)}, not {kind!r}"
    field = ".".join(str(step) for step in problem["loc"][1:])  # past the union's tag
    if problem["type"] == "extra_forbidden":
        return f"{kind} channel: unknown field `{field}`"
    message = str(problem["msg"]).removeprefix("Value error, ")
    if problem["type"] == "missing":
        message = "is required"
    return f"{kind} channel: `{field}`: {message}" if field else f"{kind} channel: {message}"
