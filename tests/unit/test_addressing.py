"""A page on the team's channels reaches the person on call where the channel can."""

from __future__ import annotations

from pydantic import TypeAdapter

from rollout.paging.outbox import addressed
from rollout.plan.channels import ChannelSpec, EmailChannelSpec
from rollout.plan.models import MemberSpec

ADA = MemberSpec(name="Ada Park", timezone="UTC", email="ada@example.com", slack="U024BE7LH")
SPEC: TypeAdapter[ChannelSpec] = TypeAdapter(ChannelSpec)
EMAIL = SPEC.validate_python(
    {"type": "email", "host": "smtp", "port": 25, "from": "r@x.org", "to": ["team@x.org"]}
)


def test_email_goes_to_the_person_on_call() -> None:
    sent = addressed(EMAIL, "Ada Park", ADA)
    assert isinstance(sent.spec, EmailChannelSpec)
    assert sent.spec.recipients == ("ada@example.com",)
    assert sent.spec.model_copy(update={"recipients": EMAIL.recipients}) == EMAIL
    no_address = ADA.model_copy(update={"email": None})
    assert addressed(EMAIL, "Ada Park", no_address).spec == EMAIL  # the team's list
    assert addressed(EMAIL, None, None).spec == EMAIL  # the whole team was paged


def test_slack_mentions_them_by_id_or_handle() -> None:
    slack = SPEC.validate_python({"type": "slack", "webhook_url": {"env": "HOOK"}})
    assert addressed(slack, "Ada Park", ADA).mention == "<@U024BE7LH>"
    assert addressed(slack, "Ada Park", ADA.model_copy(update={"slack": "@ada"})).mention == "@ada"
    assert addressed(slack, "Ada Park", ADA.model_copy(update={"slack": None})).mention is None
    assert addressed(slack, "Ada Park", ADA).spec == slack  # not a channel setting


def test_other_channels_are_unchanged() -> None:
    hook = SPEC.validate_python({"type": "webhook", "url": {"env": "HOOK"}})
    sent = addressed(hook, "Ada Park", ADA)
    assert (sent.spec, sent.recipient, sent.mention) == (hook, "Ada Park", None)
