"""A faust worker for the offset crash test (`tests/spikes/test_faust_offsets.py`).

One agent reads numbered messages (value = the id as ASCII digits) from `--input`, waits a little
(a long wait for every `--slow-every`-th id, so that messages are in flight when the worker is
killed), and forwards the id to `--output`. With `--concurrency 1` it is the shape the guardrails
allow; `--concurrency 2` exists only to show that the crash test catches faust issue #606.

    python -m spikes.faust.probe --bootstrap 127.0.0.1:19092 --prefix t1. \
        --input in --output out --concurrency 1

`--fail-id N` makes the handler raise on id N, to show what faust does with a failing message;
with `--dead-letter TOPIC` the agent runs through `spikes.faust.app.for_each_event`, which sends it
there instead.

Every processed id is also appended (and fsynced) to `--trace` when given, which tells apart
"processed but its output was lost" from "never processed".
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Sequence
from typing import Any

import faust

from spikes.faust.app import app_topic, for_each_event, guarded_agent, make_app, run_worker


def _delay(message_id: int, args: argparse.Namespace) -> float:
    if args.slow_every and message_id % args.slow_every == 0:
        return float(args.slow_seconds)
    return float(args.fast_seconds)


def build(args: argparse.Namespace) -> faust.App:
    app = make_app(
        args.name,
        bootstrap=args.bootstrap,
        topic_prefix=args.prefix,
        driver=args.driver,
        datadir=args.datadir,
        broker_commit_interval=args.commit_interval,
    )
    source = app.topic(app_topic(app, args.input), key_serializer="raw", value_serializer="raw")
    sink = app.topic(app_topic(app, args.output), key_serializer="raw", value_serializer="raw")
    trace_fd = os.open(args.trace, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if args.trace else None

    dead_letters = (
        app.topic(app_topic(app, args.dead_letter), key_serializer="raw", value_serializer="raw")
        if args.dead_letter
        else None
    )

    async def dead_letter(event: faust.EventT[Any], exc: Exception) -> None:
        assert dead_letters is not None
        await dead_letters.send(key=event.key, value=event.value, headers={"error": repr(exc).encode()})

    async def forward(stream: faust.StreamT[Any]) -> None:
        if args.dead_letter:
            await for_each_event(stream, handle, on_error=dead_letter)
        else:
            async for event in stream.events():
                await handle(event)

    async def handle(event: faust.EventT[Any]) -> None:
        raw = event.value
        message_id = int(raw)
        if message_id == args.fail_id:
            raise RuntimeError(f"probe: handler fails on id {message_id}")
        await asyncio.sleep(_delay(message_id, args))
        await sink.send(key=event.key, value=raw)
        if trace_fd is not None:
            os.write(trace_fd, b"%d\n" % message_id)
            os.fsync(trace_fd)

    if args.concurrency == 1:
        guarded_agent(app, source, name="forward")(forward)
    else:  # outside the guardrails on purpose: the crash test shows what it costs
        app.agent(source, name="forward", concurrency=args.concurrency)(forward)
    return app


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--prefix", default="")
    parser.add_argument("--name", default="faust-probe", help="app id = consumer group (prefixed)")
    parser.add_argument("--input", required=True, help="input topic (prefixed)")
    parser.add_argument("--output", required=True, help="output topic (prefixed)")
    parser.add_argument("--driver", default="kafka", choices=["kafka", "confluent"])
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--fast-seconds", type=float, default=0.005)
    parser.add_argument("--slow-every", type=int, default=0, help="every n-th id waits --slow-seconds")
    parser.add_argument("--slow-seconds", type=float, default=1.0)
    parser.add_argument("--commit-interval", type=float, default=0.5)
    parser.add_argument("--datadir", default=None)
    parser.add_argument("--fail-id", type=int, default=None, help="the handler raises on this id")
    parser.add_argument(
        "--dead-letter", default="", help="topic (prefixed) for failed messages, via for_each_event"
    )
    parser.add_argument("--trace", default=None, help="append-only file of processed ids (fsynced)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    run_worker(build(args), loglevel=logging.INFO)


if __name__ == "__main__":
    main()
