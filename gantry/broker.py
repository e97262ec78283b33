"""Kombu's Redis transport, made to outlive a broker restart.

When Redis goes away while a worker holds unacknowledged messages (a recompute waiting for
its countdown, say), Celery closes the broken connection, and closing the channel tries to
give those messages back to the queue. By then the transport has let go of its connection
settings, so kombu raises AttributeError ("'NoneType' object has no attribute 'hostname'"),
which Celery treats as unrecoverable: the worker exits. Here the give-back is best effort:
if it cannot be made, the messages stay in Redis's unacknowledged set (kombu returns them to
the queue after the visibility timeout), and their work is not lost in any case, because it
is recorded in the database and the next tick's sweep does it.
"""

import logging

from kombu.transport import redis

log = logging.getLogger(__name__)

_LOST = (AttributeError, *redis.get_redis_error_classes().connection_errors)


class QoS(redis.QoS):
    def restore_unacked(self, client=None):
        try:
            return super().restore_unacked(client)
        except _LOST as exc:
            log.warning(
                "could not give %s unacknowledged message(s) back to the broker (%s); "
                "their work waits in the database for the next tick",
                len(self._delivered),
                type(exc).__name__,
            )
            self._delivered.clear()
            return []


class Channel(redis.Channel):
    QoS = QoS


class Transport(redis.Transport):
    Channel = Channel
