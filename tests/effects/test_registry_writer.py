"""The registry writer on anvil and Kafka: write-once URIs, AlreadySet as success, skipped, failed."""

from __future__ import annotations

from kits.background import Background, wait_for
from kits.writers import new_system, register, writer_settings

from effects.registry_writer import RegistryWriter
from eventlog.producer import EventProducer
from eventlog.serde import EventSerde
from eventlog.topics import CHALLENGES_REGISTERED
from indexers.chain.kafka import read_topic

BASE = "http://localhost:3000"


def records(settings) -> list[dict]:
    serde = EventSerde(settings.schema_registry_url)
    events = [serde.decode(m.value()) for m in read_topic(settings, CHALLENGES_REGISTERED)]
    return [e.payload for e in events if e.event_type == "RegistryWriteRecorded"]


def run_until(writer: RegistryWriter, condition, what: str) -> None:
    runner = Background(writer.run, writer.stop.set)
    try:
        wait_for(condition, what=what)
    finally:
        runner.stop()


def test_uris_are_written_once_and_an_existing_uri_is_success(settings, anvil, tmp_path):
    system, drive = new_system(anvil)
    fresh, preset = drive.create_challenge(), drive.create_challenge()
    earlier = drive.metadata_set(preset.id, f"{BASE}/api/challenges/meta/{preset.id}")
    s = writer_settings(settings, system, tmp_path, registry_private_key="0x" + system.roles.admin.key.hex(),
                        metadata_base_url=BASE + "/")
    producer = EventProducer(s, "test")
    register(producer, fresh)
    register(producer, preset)
    run_until(RegistryWriter(s), lambda: len(records(s)) == 2, "two registry records")

    by_id = {r["challenge_id"]: r for r in records(s)}
    assert by_id[fresh.id]["status"] == "success" and by_id[fresh.id]["uri"] == f"{BASE}/api/challenges/meta/{fresh.id}"
    assert system.client.w3.eth.get_transaction_receipt(by_id[fresh.id]["tx_hash"])["status"] == 1
    assert system.client.call(system.metadata, "uri", system.pay.address, fresh.id) == by_id[fresh.id]["uri"]
    assert by_id[preset.id]["status"] == "success"
    assert by_id[preset.id]["tx_hash"] == earlier["transactionHash"].to_0x_hex()  # found, not sent again
    assert by_id[preset.id]["chain_uri"] == by_id[preset.id]["uri"]

    register(producer, fresh)  # a re-registration: nothing more to write
    run_until(RegistryWriter(s), lambda: True, "a restart")
    assert len(records(s)) == 2


def test_unconfigured_is_skipped_once_and_a_refused_write_fails_until_final(settings, anvil, tmp_path):
    system, drive = new_system(anvil)
    challenge = drive.create_challenge()
    unconfigured = writer_settings(settings, system, tmp_path)
    producer = EventProducer(unconfigured, "test")
    register(producer, challenge)
    run_until(RegistryWriter(unconfigured), lambda: len(records(unconfigured)) == 1, "skipped")
    [skipped] = records(unconfigured)
    assert (skipped["status"], skipped["error"], skipped["tx_hash"]) == ("skipped", "writer not configured", None)

    not_owner = unconfigured.replace(registry_private_key="0x" + system.roles.worker.key.hex(),
                                     metadata_base_url=BASE, aivm_max_attempts=3)
    run_until(RegistryWriter(not_owner), lambda: any(r["final"] for r in records(not_owner)), "a final failure")
    failed = records(not_owner)[1:]
    assert [(r["status"], r["attempt"]) for r in failed] == [("failed", 2), ("failed", 3)]
    assert all(r["error"].startswith("NotOwner") for r in failed) and failed[-1]["final"] is True
    assert system.client.call(system.metadata, "uri", system.pay.address, challenge.id) == ""
