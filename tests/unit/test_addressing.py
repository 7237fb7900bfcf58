"""A page on the team's channels reaches the person on call where the channel can."""

from __future__ import annotations

from rollout.engine.outbox import MENTION, addressed
from rollout.plan.models import MemberSpec

ADA = MemberSpec(name="Ada Park", timezone="UTC", email="ada@example.com", slack="U024BE7LH")
EMAIL = {"type": "email", "host": "smtp", "port": 25, "from": "r@x.org", "to": ["team@x.org"]}


def test_email_goes_to_the_person_on_call() -> None:
    assert addressed(EMAIL, ADA)["to"] == ["ada@example.com"]
    assert (
        addressed(EMAIL, ADA.model_copy(update={"email": None})) == EMAIL
    )  # no address: the team's list
    assert addressed(EMAIL, None) == EMAIL  # the whole team was paged


def test_slack_mentions_them_by_id_or_handle() -> None:
    slack = {"type": "slack", "webhook_url": {"env": "HOOK"}}
    assert addressed(slack, ADA)[MENTION] == "<@U024BE7LH>"
    assert addressed(slack, ADA.model_copy(update={"slack": "@ada"}))[MENTION] == "@ada"
    assert MENTION not in addressed(slack, ADA.model_copy(update={"slack": None}))


def test_other_channels_are_unchanged() -> None:
    hook = {"type": "webhook", "url": {"env": "HOOK"}}
    assert addressed(hook, ADA) == hook
