"""What Celery 5.7's consumer does to a lost Redis connection — collect() it, then close() it
— and what may happen next (a late ack of a message that came over it) must raise a
connection error at most, which Celery retries, never AttributeError, which stops the
worker. engine/broker.py says why."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kombu import Connection, Message, Queue

from rollout.engine.broker import TRANSPORT, transport_for

pytestmark = pytest.mark.integration

QUEUE = "broker-test"


@pytest.fixture
def connection(redis_url: str) -> Iterator[Connection]:
    with Connection(redis_url, transport=TRANSPORT) as connection:
        yield connection


def _unacked_message(connection: Connection) -> Message:
    queue = Queue(QUEUE, channel=connection.default_channel)
    queue.declare()
    connection.Producer().publish({"nudge": 1}, routing_key=QUEUE, declare=[queue])
    message = queue.get(no_ack=False)
    assert message is not None
    return message


def test_a_channel_closes_and_refuses_acks_once_its_transport_is_collected(
    connection: Connection,
) -> None:
    message = _unacked_message(connection)
    errors = connection.connection_errors
    channel = connection.default_channel
    # What collect() leaves when Redis is down: the transport's client dropped, the channel
    # not closed (its own close failed on the dead socket).
    channel.connection.client = None
    channel.close()  # kombu's own transport: AttributeError ('NoneType' … 'hostname')
    with pytest.raises(errors):
        message.ack()


def test_only_plain_redis_urls_take_the_repaired_transport() -> None:
    assert transport_for("redis://127.0.0.1:6379/0") == TRANSPORT
    assert transport_for("rediss://redis.example:6380/0") is None
    assert transport_for("amqp://guest@rabbit//") is None
