"""The Confluent wire format against a real schema registry (Apicurio, `lc up --registry`), whose
compatibility is BACKWARD_TRANSITIVE: every schema version in schemas/ registers in order, a stage
reads and writes through it, and an incompatible change is refused with a clear error."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from kits.background import Background, wait_for
from kits.processors import T0, competitive, of_type, publish_evidence, publish_registration, read_all, steps
from kits.schemas import widget_catalogue

from cli.settings import Settings
from devstack.registry import COMPATIBILITY, SchemaRegistryServer
from eventlog.producer import EventProducer
from eventlog.serde import CONFLUENT_MAGIC, EventSerde, SchemaCatalogue, SchemaRefused
from eventlog.topics import VERDICTS
from streams.processors.evaluator import Evaluator

ENVELOPE = {"event_id": "w-1", "occurred_at": 1_757_500_000_000, "producer": "test"}


def test_every_schema_version_registers_in_order(registry: SchemaRegistryServer, settings: Settings) -> None:
    client = SchemaRegistryClient({"url": registry.url})
    assert client.get_compatibility() == COMPATIBILITY
    catalogue = SchemaCatalogue()
    for event_type, versions in catalogue.versions.items():
        subject = f"{settings.topic_prefix}lc.any-lc.{event_type}"
        for number in sorted(versions):
            client.register_schema(subject, Schema(versions[number].document, "AVRO"))
        assert len(client.get_versions(subject)) == len(versions), event_type


def test_a_stage_reads_and_writes_the_confluent_wire_format(registry: SchemaRegistryServer,
                                                             settings: Settings) -> None:
    settings = settings.replace(schema_registry_url=registry.url)
    with EventProducer(settings, "test") as producer:
        publish_registration(producer, 7, competitive(1))
        evidence_id = publish_evidence(producer, 7, "0x" + "a1" * 20, steps(500), at_ms=T0 * 1000 + 1)
    evaluator = Evaluator(settings)
    worker = Background(evaluator.run, evaluator.stop.set)
    try:
        wait_for(lambda: len(of_type(read_all(settings, VERDICTS), "VerdictIssued")) == 1, what="the verdict")
    finally:
        worker.stop()
    (verdict,) = of_type(read_all(settings, VERDICTS), "VerdictIssued")
    assert verdict.raw[:1] == CONFLUENT_MAGIC
    schema_id = struct.unpack(">I", verdict.raw[1:5])[0]
    registered = SchemaRegistryClient({"url": registry.url}).get_schema(schema_id)
    assert json.loads(registered.schema_str)["name"] == "VerdictIssued"
    # a fresh reader finds the writer's schema by its id in the registry
    fresh = EventSerde(registry.url).decode(verdict.raw)
    assert fresh.payload["trigger_event_id"] == evidence_id
    assert fresh.payload["score"] == 500.0


V1 = [{"name": "size", "type": "int"}]
V2 = [*V1, {"name": "colour", "type": "string", "default": "grey"}]  # compatible: a field with a default
V3 = [*V2, {"name": "weight", "type": "int"}]  # incompatible: v3 cannot read v1 or v2 (no default)


def test_an_incompatible_schema_change_is_refused(registry: SchemaRegistryServer, settings: Settings,
                                                  tmp_path: Path) -> None:
    settings = settings.replace(schema_registry_url=registry.url)
    topic = "lc.widgets"
    old = EventSerde(registry.url, widget_catalogue(tmp_path / "v1", {1: V1}))
    newer = EventSerde(registry.url, widget_catalogue(tmp_path / "v2", {1: V1, 2: V2}))
    written = old.encode(settings.topic(topic), "Widget", ENVELOPE, {"size": 3})
    assert newer.decode(newer.encode(settings.topic(topic), "Widget", ENVELOPE, {"size": 4, "colour": "red"})
                        ).payload == {"size": 4, "colour": "red"}
    assert newer.decode(written).payload == {"size": 3, "colour": "grey"}

    incompatible = EventSerde(registry.url, widget_catalogue(tmp_path / "v3", {1: V1, 2: V2, 3: V3}))
    with EventProducer(settings, "test", serde=incompatible) as producer, pytest.raises(SchemaRefused) as refused:
        producer.publish(topic, "1", "Widget", {"size": 5, "colour": "blue", "weight": 9}, event_id="w-3")
    message = str(refused.value)
    assert f"refused Widget v3 for subject {settings.topic(topic)}-lc.Widget" in message
    assert "Incompatible" in message and "weight" in message
    subject = f"{settings.topic(topic)}-lc.Widget"
    assert SchemaRegistryClient({"url": registry.url}).get_versions(subject) == [1, 2]  # nothing registered
