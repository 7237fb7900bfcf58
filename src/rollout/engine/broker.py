"""kombu's Redis transport, made to survive Celery 5.7's handling of a lost connection.

On a lost broker connection Celery 5.7's consumer first `collect()`s the connection, which
drops the transport's `client`, and then `close()`s it. Closing the channel puts its
unacknowledged messages back through a fresh Redis pool, built from that `client`: None,
so `AttributeError: 'NoneType' object has no attribute 'hostname'`. That is no connection
error, so nothing on the way up catches it and the worker stops ("Unrecoverable error").
So does the late acknowledgement of a task that was running when the connection went: its
message's channel is the closed one. Here both become what they are, a lost connection,
which kombu and Celery already handle. (Close to celery #9250, where the same path fails on
py-amqp.)
"""

from __future__ import annotations

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

# The transport as `broker_transport` names it, for `redis://` broker URLs.
TRANSPORT = "rollout.engine.broker:Transport"


class Channel(kombu_redis.Channel):
    def _collected(self) -> bool:
        return self.connection is None or self.connection.client is None

    def close(self) -> None:
        if self._collected():
            # Its unacknowledged messages cannot be put back through a connection that is
            # gone. Nothing is lost: Redis keeps them in its unacked index until the
            # visibility timeout, and the ticker re-drives their rows when their lease runs
            # out, long before that.
            self.do_restore = False
        super().close()  # type: ignore[no-untyped-call]

    def _connparams(self, asynchronous: bool = False) -> dict[str, object]:
        if self._collected():
            # An ack or reject for a message of a connection already closed: the message
            # comes round again, which late acknowledgement is there for.
            raise RedisConnectionError("the broker connection this channel belonged to is closed")
        params: dict[str, object] = super()._connparams(asynchronous=asynchronous)  # type: ignore[no-untyped-call]
        return params


class Transport(kombu_redis.Transport):
    Channel = Channel


def transport_for(broker_url: str) -> str | None:
    """This transport for a plain `redis://` URL; kombu's own for any other scheme (`rediss`
    keeps kombu's TLS handling, an AMQP URL its transport)."""
    return TRANSPORT if broker_url.startswith("redis://") else None
