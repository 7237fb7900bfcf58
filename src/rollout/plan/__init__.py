"""The plan: the typed contract between submission and the workers that move a rollout."""

from rollout.plan.models import (
    ArtifactsSpec,
    GateSpec,
    HttpGateSpec,
    PagingSpec,
    Plan,
    PrometheusGateSpec,
    SoakGateSpec,
    StageSpec,
    WebhookGateSpec,
)

__all__ = [
    "ArtifactsSpec",
    "GateSpec",
    "HttpGateSpec",
    "PagingSpec",
    "Plan",
    "PrometheusGateSpec",
    "SoakGateSpec",
    "StageSpec",
    "WebhookGateSpec",
]
