"""The guarded faust app factory: what it fixes and what it refuses (no broker needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("faust", reason="the faust spike needs the faust-spike extra: pip install -e '.[faust-spike]'")
from faust.types.enums import ProcessingGuarantee

from spikes.faust.app import app_topic, broker_urls, guarded_agent, make_app


def test_broker_urls_from_a_bootstrap_string() -> None:
    assert broker_urls("h1:9092, h2:9093") == ["kafka://h1:9092", "kafka://h2:9093"]
    assert broker_urls("h1:9092", driver="confluent") == ["confluent://h1:9092"]
    with pytest.raises(ValueError):
        broker_urls(" , ")
    with pytest.raises(ValueError):
        broker_urls("h1:9092", driver="rabbit")


def test_make_app_applies_the_guardrails(tmp_path: Path) -> None:
    app = make_app("evaluator", bootstrap="127.0.0.1:19092", topic_prefix="t1.", datadir=str(tmp_path))
    conf = app.conf
    assert conf.id == "t1.evaluator"  # the consumer group
    assert conf.processing_guarantee is ProcessingGuarantee.AT_LEAST_ONCE
    assert [str(url) for url in conf.broker] == ["kafka://127.0.0.1:19092"]
    assert str(conf.store) == "memory:"
    assert conf.topic_allow_declare is False
    assert conf.web_enabled is False
    assert app_topic(app, "lc.evidence") == "t1.lc.evidence"


def test_make_app_refuses_to_override_a_guardrail(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="processing_guarantee"):
        make_app("x", bootstrap="h:1", datadir=str(tmp_path), processing_guarantee="exactly_once")
    with pytest.raises(ValueError, match="store"):
        make_app("x", bootstrap="h:1", datadir=str(tmp_path), store="rocksdb://")


def test_guarded_agent_has_concurrency_one(tmp_path: Path) -> None:
    app = make_app("x", bootstrap="h:1", datadir=str(tmp_path))
    topic = app.topic("in", value_serializer="raw")

    async def handler(stream: object) -> None:
        return None

    agent = guarded_agent(app, topic, name="handler")(handler)
    assert agent.concurrency == 1
