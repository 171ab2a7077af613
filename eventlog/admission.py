"""What a consuming stage takes from a topic, decided in one place.

A message is admitted when it has a UTF-8 key, decodes to an event whose time every stage can store
(`occurred_at` becomes a timestamptz in the projected tables), and the event's type is one of its
topic's (eventlog/topics.py). Anything else is refused with the reason: on most topics it goes to
lc.dlq and the stage carries on; on the ordered chain-fact topics the stage halts, because skipping
a chain fact would silently corrupt every later state (DESIGN.md "Bad input"). The consumer loop, the
restore that re-reads a committed prefix, and the chain clock all admit through `admit`, so they
agree on what was skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from domain.untrusted import UntrustedInput, check_epoch_ms
from eventlog.failures import OperatorError
from eventlog.serde import Event, EventSerde, UndecodableMessage
from eventlog.topics import CATALOGUE

log = logging.getLogger(__name__)


class Inadmissible(ValueError):
    """A message a stage cannot take from its topic; the message says why."""


class StageHalted(OperatorError):
    """An ordered fact (lc.chain.*) that a stage cannot read or apply: it stops before it, loudly.

    The message names topic, partition and offset; nothing at or after that offset is committed, so
    a restarted stage halts at the same place until the topic is repaired."""


def halt_at(topic: str, partition: int, offset: int, reason: str) -> StageHalted:
    return StageHalted(f"{topic}[{partition}]@{offset}: {reason}")


def admit(serde: EventSerde, topic: str, key: bytes | None, value: bytes | None) -> tuple[str | None, Event]:
    """(key, event) of a message of catalogue topic `topic`, or Inadmissible with the reason."""
    spec = CATALOGUE.get(topic)
    text_key = None
    if key is not None:
        try:
            text_key = key.decode()
        except UnicodeDecodeError:
            raise Inadmissible("the key is not UTF-8") from None
    elif spec is not None:
        raise Inadmissible(f"no key ({topic} is keyed by {spec.key})")
    try:
        event = serde.decode(value)
    except UndecodableMessage as exc:
        raise Inadmissible(f"undecodable: {exc}") from None
    try:
        check_epoch_ms("occurred_at", event.occurred_at)  # it becomes a timestamptz in the projected tables
    except UntrustedInput as exc:
        raise Inadmissible(str(exc)) from None
    if spec is not None and event.event_type not in spec.event_types:
        raise Inadmissible(f"event type {event.event_type} does not belong on {topic} "
                           f"(it carries {', '.join(spec.event_types)})")
    return text_key, event


@contextmanager
def halts_logged(stage: str) -> Iterator[None]:
    """Log a halt as CRITICAL (with where it happened) once, where the stage's run loop ends."""
    try:
        yield
    except StageHalted as exc:
        log.critical("%s HALTED on an ordered chain fact it cannot read or apply: %s. Nothing at or after "
                     "this offset is committed; the stage halts here again until the topic is repaired.",
                     stage, exc)
        raise
