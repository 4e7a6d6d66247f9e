"""Which failed command sends the orchestrator sends again: timeouts and moved leaders, nothing else."""
from __future__ import annotations

from aiokafka import errors

from stream_processors.app import resendable


def test_a_timeout_or_a_moved_leader_is_sent_again() -> None:
    assert resendable(errors.KafkaTimeoutError())
    assert resendable(errors.RequestTimedOutError())
    assert resendable(errors.NotLeaderForPartitionError())


def test_anything_else_propagates() -> None:
    assert not resendable(errors.MessageSizeTooLargeError())
    assert not resendable(errors.TopicAuthorizationFailedError())
    assert not resendable(ValueError("not a Kafka error"))
