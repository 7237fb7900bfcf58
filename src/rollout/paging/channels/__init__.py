"""Paging channels: one page, in the exact shape its receiver expects, and how delivery
failed. The receivers, the formats and the building of a channel from its config each have
a module; this is their one public surface."""

from rollout.paging.channels.building import (
    channel_from_config,
    read_channel_spec,
)
from rollout.paging.channels.formats import (
    ALERTNAMES,
    PAGERDUTY_DEDUP_KEY_MAX,
    PAGERDUTY_SEVERITY,
    PAGERDUTY_SUMMARY_MAX,
    alertmanager_alert,
    email_message,
    pagerduty_event,
    slack_text,
)
from rollout.paging.channels.message import (
    KINDS,
    SEVERITIES,
    Action,
    Channel,
    ChannelConfigError,
    DeliveryError,
    PageMessage,
    PermanentDeliveryError,
    RetryableDeliveryError,
    headline,
    parse_retry_after,
    redact_url,
    rfc3339,
)
from rollout.paging.channels.receivers import (
    AlertmanagerChannel,
    EmailChannel,
    PagerDutyChannel,
    SlackChannel,
    WebhookChannel,
)

__all__ = [
    "ALERTNAMES",
    "KINDS",
    "PAGERDUTY_DEDUP_KEY_MAX",
    "PAGERDUTY_SEVERITY",
    "PAGERDUTY_SUMMARY_MAX",
    "SEVERITIES",
    "Action",
    "AlertmanagerChannel",
    "Channel",
    "ChannelConfigError",
    "DeliveryError",
    "EmailChannel",
    "PageMessage",
    "PagerDutyChannel",
    "PermanentDeliveryError",
    "RetryableDeliveryError",
    "SlackChannel",
    "WebhookChannel",
    "alertmanager_alert",
    "channel_from_config",
    "email_message",
    "headline",
    "pagerduty_event",
    "parse_retry_after",
    "read_channel_spec",
    "redact_url",
    "rfc3339",
    "slack_text",
]
