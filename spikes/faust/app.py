"""A faust-streaming app with the project's guardrails (../shared/DESIGN.md, Known pitfalls).

What the factory enforces, and why (evidence in docs/decisions.md, section "faust-streaming"):

- `processing_guarantee="at_least_once"`: faust's exactly_once mode has field reports of duplicates
  and crashes at startup; outputs must carry deterministic ids so a redelivery is recognised.
- agent concurrency 1 (`guarded_agent`): with concurrency > 1 faust commits an offset past a message
  that is still in flight (faust issue #606) and loses it on a crash;
  `tests/spikes/test_faust_offsets.py` reproduces the loss with concurrency 2.
- errors go through `for_each_event(stream, handle, on_error)`: an exception escaping an agent makes
  faust ack and commit the failing message (it is lost), so every failure must be dead-lettered.
- no tables and an in-memory store: no state that cannot be rebuilt from topics.
- `topic_allow_declare=False`: topics are created by `lc topics create` (eventlog.admin), never by a
  worker with its own partition count; faust's internal leader topic is disabled.
- no web server (a worker must not need a free port), and a short broker session timeout so a
  SIGKILLed worker's partitions move to a survivor within seconds, not a minute.

Usage::

    app = make_app("evaluator", bootstrap="127.0.0.1:9092", topic_prefix="t1.")
    evidence = app.topic(app_topic(app, "lc.evidence"), value_serializer="raw")

    @guarded_agent(app, evidence)
    async def evaluate(stream):
        await for_each_event(stream, handle, on_error=dead_letter)

    run_worker(app)  # blocks; SIGTERM/SIGINT stop it after committing acked offsets
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import faust
from faust.types import AgentT, ChannelT, EventT, StreamT
from faust.types.agents import AgentFun

__all__ = [
    "FORBIDDEN_SETTINGS",
    "app_topic",
    "broker_urls",
    "for_each_event",
    "guarded_agent",
    "make_app",
    "run_worker",
]

_F = TypeVar("_F", bound=AgentFun)

#: settings a caller may not override through `make_app(**overrides)`.
FORBIDDEN_SETTINGS = frozenset({"processing_guarantee", "broker", "store", "topic_allow_declare"})

_PREFIX_ATTR = "_lc_topic_prefix"


def broker_urls(bootstrap: str, *, driver: str = "kafka") -> list[str]:
    """`"h1:9092,h2:9092"` -> `["kafka://h1:9092", "kafka://h2:9092"]` (`driver="confluent"` for librdkafka)."""
    if driver not in {"kafka", "aiokafka", "confluent"}:
        raise ValueError(f"unknown faust driver {driver!r}")
    hosts = [h.strip() for h in bootstrap.split(",") if h.strip()]
    if not hosts:
        raise ValueError("empty Kafka bootstrap string")
    return [h if "://" in h else f"{driver}://{h}" for h in hosts]


def make_app(
    name: str,
    *,
    bootstrap: str,
    topic_prefix: str = "",
    driver: str = "kafka",
    datadir: str | None = None,
    **overrides: Any,
) -> faust.App:
    """A faust app whose consumer group is `<topic_prefix><name>`, with the guardrails above.

    `overrides` are further faust settings (e.g. `broker_commit_interval=1.0`); the settings in
    `FORBIDDEN_SETTINGS` cannot be overridden.
    """
    forbidden = FORBIDDEN_SETTINGS & overrides.keys()
    if forbidden:
        raise ValueError(f"make_app: {sorted(forbidden)} are fixed by the project's guardrails")
    settings: dict[str, Any] = {
        "broker": broker_urls(bootstrap, driver=driver),
        "processing_guarantee": "at_least_once",
        "store": "memory://",
        "topic_allow_declare": False,
        "topic_disable_leader": True,
        "web_enabled": False,
        "consumer_auto_offset_reset": "earliest",
        "broker_session_timeout": 10.0,
        "broker_heartbeat_interval": 1.0,
        "broker_commit_interval": 1.0,
        "datadir": datadir or tempfile.mkdtemp(prefix=f"faust-{name}-"),
    }
    settings.update(overrides)
    app = faust.App(f"{topic_prefix}{name}", **settings)
    setattr(app, _PREFIX_ATTR, topic_prefix)
    return app


def app_topic(app: faust.App, name: str) -> str:
    """The physical name of catalogue topic `name` for an app made by `make_app` (prefix applied)."""
    return f"{getattr(app, _PREFIX_ATTR, '')}{name}"


def guarded_agent(
    app: faust.App, channel: ChannelT | str, *, name: str | None = None
) -> Callable[[_F], AgentT]:
    """`app.agent(channel, concurrency=1)`: the only agent shape the guardrails allow."""
    return app.agent(channel, name=name, concurrency=1)


async def for_each_event(
    stream: StreamT[Any],
    handle: Callable[[EventT], Awaitable[None]],
    on_error: Callable[[EventT, Exception], Awaitable[None]],
) -> None:
    """Drive an agent's stream: `handle` each event; when it raises, `on_error` (dead-letter) it.

    An exception that escapes an agent makes faust ack and commit the message being processed and
    restart the agent: the message is lost without a trace (tested in
    tests/spikes/test_faust_offsets.py). Route every failure through `on_error` instead, and make
    `on_error` itself safe (publish to `lc.dlq` and await the send).
    """
    async for event in stream.events():
        try:
            await handle(event)
        except Exception as exc:  # the error policy: dead-letter and go on, never crash the agent
            await on_error(event, exc)


def run_worker(app: faust.App, *, loglevel: int | str = logging.INFO) -> None:
    """Run `app` as a worker in this process until SIGTERM/SIGINT (blocks)."""
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
