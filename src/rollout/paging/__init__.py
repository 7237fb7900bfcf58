"""Paging's delivery edge: channels to the receivers, and delivery with retries."""

from rollout.paging.channels import (
    Action,
    AlertmanagerChannel,
    Channel,
    ChannelConfigError,
    DeliveryError,
    EmailChannel,
    PageMessage,
    PagerDutyChannel,
    PermanentDeliveryError,
    RetryableDeliveryError,
    SlackChannel,
    WebhookChannel,
    channel_from_config,
    headline,
    parse_retry_after,
)
from rollout.paging.delivery import (
    DeliveryOutcome,
    DeliveryStatus,
    backoff_after,
    deliver_with_retries,
)
from rollout.secrets import SecretError, SecretRef

__all__ = [
    "Action",
    "AlertmanagerChannel",
    "Channel",
    "ChannelConfigError",
    "DeliveryError",
    "DeliveryOutcome",
    "DeliveryStatus",
    "EmailChannel",
    "PageMessage",
    "PagerDutyChannel",
    "PermanentDeliveryError",
    "RetryableDeliveryError",
    "SecretError",
    "SecretRef",
    "SlackChannel",
    "WebhookChannel",
    "backoff_after",
    "channel_from_config",
    "deliver_with_retries",
    "headline",
    "parse_retry_after",
]
