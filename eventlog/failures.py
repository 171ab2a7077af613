"""Failures an operator fixes, reported as one line of our own instead of a traceback or library noise.

`OperatorError`: raised where a stage or command cannot go on until someone acts (a missing key, a
missing topic, a service that does not answer a command). Its message is one line that says what,
where and what to do; `lc` prints it and exits non-zero.

`ClientNoise`: the `error_cb` and `logger` of every librdkafka client. librdkafka reports an
unreachable broker ("Connect to ipv4#127.0.0.1:9092 failed: Connection refused") about twenty
times a second per client; this turns the first of each kind into one line naming the broker and
what to check, and repeats it at most once per interval with the count of what it held back.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from confluent_kafka import KafkaError

from eventlog import metrics

log = logging.getLogger("lc.kafka")

REPORT_INTERVAL_SECONDS = 30.0
UNREACHABLE_CODES = frozenset({KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE,
                               KafkaError._TIMED_OUT})
UNREACHABLE_WORDS = ("Connection refused", "brokers are down", "Failed to resolve", "Connection reset",
                     "timed out", "Disconnected")


class OperatorError(RuntimeError):
    """A stage or command cannot go on until an operator acts; the message is that one line."""


class ServiceUnavailable(OperatorError):
    """A service a command needs does not answer (a stage retries instead; a command stops)."""


class RateLimiter:
    """At most one report per kind per interval; counts what it held back (thread-safe)."""

    def __init__(self, interval: float = REPORT_INTERVAL_SECONDS) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def admit(self, kind: str, now: float | None = None) -> int | None:
        """None: hold this one back; else report it, with the number held back since the last report."""
        now = time.monotonic() if now is None else now
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.interval:
                self._held[kind] = self._held.get(kind, 0) + 1
                return None
            self._last[kind] = now
            return self._held.pop(kind, 0)

    def forget(self, kind: str) -> None:
        with self._lock:
            self._last.pop(kind, None)
            self._held.pop(kind, None)


_LIMITER = RateLimiter()  # one per process: ten clients of one stage repeat the same outage once


class ClientNoise:
    """What one librdkafka client reports, as lines of our own (pass `config()` to the client)."""

    def __init__(self, bootstrap: str, client: str, limiter: RateLimiter | None = None, *,
                 replaced_when_fatal: bool = False) -> None:
        """`replaced_when_fatal`: the client is a producer of an instance's own transactional id, which
        the producer helper replaces after a fatal error (`ProducerLost`) while the stage goes on."""
        self.bootstrap = bootstrap
        self.client = client
        self.limiter = limiter or _LIMITER
        self.replaced_when_fatal = replaced_when_fatal
        self.logger = _LibrdkafkaLogger(self)

    def config(self) -> dict[str, Any]:
        return {"error_cb": self.on_error, "logger": self.logger}

    def on_error(self, error: KafkaError) -> None:
        metrics.CLIENT_ERRORS.labels(_kind(error.code(), error.str())).inc()
        if error.fatal() and self.replaced_when_fatal:
            log.error("%s: fatal Kafka client error at %s: %s; its producer is replaced and the stage goes on "
                      "from what was committed", self.client, self.bootstrap, error.str())
            return
        if error.fatal():
            log.critical("%s: fatal Kafka client error at %s: %s; the stage stops (restart it after fixing the "
                         "cause)", self.client, self.bootstrap, error.str())
            return
        self.report(error.code(), error.str())

    def report(self, code: int | None, text: str) -> None:
        kind = _kind(code, text)
        held = self.limiter.admit(f"{self.bootstrap}:{kind}")
        if held is None:
            return
        suffix = f" ({held} similar messages held back in the last {self.limiter.interval:.0f} s)" if held else ""
        if kind == "unreachable":
            log.error("Kafka at %s is unreachable (%s); %s keeps retrying. Check that the broker runs and that "
                      "LC_KAFKA_BOOTSTRAP is right (lc health)%s", self.bootstrap, _detail(text), self.client, suffix)
        else:
            log.warning("Kafka client %s: %s%s", self.client, _detail(text), suffix)


class _LibrdkafkaLogger(logging.Logger):
    """confluent-kafka hands librdkafka's log lines to `logger.log`; errors and warnings become reports."""

    def __init__(self, noise: ClientNoise) -> None:
        super().__init__(f"librdkafka.{noise.client}")
        self.noise = noise

    def log(self, level: int, msg: object, *args: object, **_kwargs: Any) -> None:
        if level < logging.WARNING:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s: %s", self.noise.client, str(msg) % args if args else msg)
            return
        self.noise.report(None, str(msg) % args if args else str(msg))


def _kind(code: int | None, text: str) -> str:
    if "transaction failed" in text:  # a transaction's message timed out: the stage aborts and restores it
        return "transaction"
    if code in UNREACHABLE_CODES or any(word in text for word in UNREACHABLE_WORDS):
        return "unreachable"
    return "other" if code is None else f"code{code}"


def _detail(text: str) -> str:
    """The library's own words without its framing (`FAIL [rdkafka#consumer-1] [thrd:...]: host/id: ...`)."""
    detail = text.split("]: ", 1)[-1] if text.startswith(("FAIL", "ERROR", "WARN")) or "[thrd:" in text else text
    detail = detail.split(": ", 1)[-1] if "/bootstrap: " in detail or "/1: " in detail else detail
    return detail.strip()[:300]


def client_config(bootstrap: str, client: str) -> dict[str, Any]:
    """`bootstrap.servers` with the error callback and logger every client of the pipeline uses."""
    return {"bootstrap.servers": bootstrap, **ClientNoise(bootstrap, client).config()}
