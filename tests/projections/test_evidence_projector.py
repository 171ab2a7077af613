"""The evidence projector on the real broker and database: rows, idempotence, dead letters."""

from __future__ import annotations

import json

import psycopg
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from kits.background import Background, wait_for
from kits.evidence import evidence_rows, publish

from cli.settings import Settings
from cli.tail import tail
from eventlog.producer import EventProducer
from eventlog.topics import DLQ, EVIDENCE
from projections.framework import Projector
from projections.registry import all_projections

SUBJECT = "0xAbCdEf0000000000000000000000000000000001"


def start_projector(settings: Settings) -> tuple[Projector, Background]:
    projector = Projector(settings, all_projections())
    return projector, Background(projector.run, projector.stop.set)


def stored_offset(settings: Settings) -> int:
    with psycopg.connect(settings.pg_dsn) as conn:
        row = conn.execute("SELECT coalesce(sum(next_offset), 0) FROM projection_offsets").fetchone()
        return int(row[0])


def dead_letters(settings: Settings) -> list[dict]:
    return [json.loads(line) for line in tail(settings, DLQ, follow=False)]


def test_newest_evidence_replaces_and_an_equal_hash_changes_nothing(settings: Settings) -> None:
    with EventProducer(settings, "test") as producer:
        publish(producer, 5, SUBJECT, "strava", [{"activity_id": "1"}], occurred_at=1_000)
        publish(producer, 5, SUBJECT.lower(), "strava", [{"activity_id": "2"}], occurred_at=2_000)
        h3 = publish(producer, 5, SUBJECT, "fitbit", [{"steps": 10}], occurred_at=3_000)
    projector, worker = start_projector(settings)
    try:
        wait_for(lambda: stored_offset(settings) == 3, what="3 events projected")
        rows = evidence_rows(settings.pg_dsn)
        assert [(r[0], r[1], r[2], json.loads(r[3])) for r in rows] == [
            (5, SUBJECT.lower(), "fitbit", [{"steps": 10}]),
            (5, SUBJECT.lower(), "strava", [{"activity_id": "2"}]),
        ]
        strava_created, strava_updated = rows[1][6], rows[1][7]
        assert strava_created.timestamp() == 1.0 and strava_updated.timestamp() == 2.0

        with EventProducer(settings, "test") as producer:  # same hash again, later: nothing changes
            publish(producer, 5, SUBJECT, "fitbit", [{"steps": 10}], occurred_at=9_000, evidence_hash=h3)
        wait_for(lambda: stored_offset(settings) == 4, what="the 4th event projected")
        assert evidence_rows(settings.pg_dsn) == rows
    finally:
        worker.stop()


def test_garbage_goes_to_the_dead_letter_topic_and_the_projector_carries_on(settings: Settings) -> None:
    raw = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    raw.produce(settings.topic(EVIDENCE), key=b"9", value=b"definitely not avro")
    raw.flush(10)
    with EventProducer(settings, "test") as producer:
        producer.publish(EVIDENCE, "9", "EvidenceSubmitted",
                         {"challenge_id": 9, "subject": SUBJECT, "provider": "strava", "records_json": "{\"a\":1}",
                          "evidence_hash": "0x01", "raw_ref": None}, event_id="bad-shape", occurred_at=1)
        publish(producer, 9, SUBJECT, "strava", [{"activity_id": "ok"}], occurred_at=2)
    projector, worker = start_projector(settings)
    try:
        wait_for(lambda: stored_offset(settings) == 3, what="all 3 messages consumed")
        assert [(r[0], json.loads(r[3])) for r in evidence_rows(settings.pg_dsn)] == [(9, [{"activity_id": "ok"}])]
        letters = dead_letters(settings)
        assert len(letters) == 2
        garbage, bad_shape = sorted(letters, key=lambda d: d["payload"]["source_offset"])
        assert garbage["payload"]["reason"].startswith("undecodable: not an Avro event")
        assert garbage["payload"]["original"] == {"base64": "ZGVmaW5pdGVseSBub3QgYXZybw=="}
        assert (garbage["payload"]["source_topic"], garbage["payload"]["source_offset"]) == (EVIDENCE, 0)
        assert garbage["payload"]["stage"] == "lc-projector"
        assert bad_shape["payload"]["reason"] == "invalid evidence: records_json is not a JSON array"
        assert bad_shape["payload"]["source_offset"] == 1
    finally:
        worker.stop()


def test_a_restarted_projector_resumes_from_its_stored_offsets(settings: Settings) -> None:
    with EventProducer(settings, "test") as producer:
        for n in range(10):
            publish(producer, n, SUBJECT, "strava", [{"n": n}], occurred_at=n)
    projector, worker = start_projector(settings)
    wait_for(lambda: stored_offset(settings) == 10, what="10 events projected")
    worker.stop()
    with psycopg.connect(settings.pg_dsn) as conn:  # tamper: a re-applied event would overwrite this hash
        conn.execute("UPDATE evidence SET evidence_hash = 'tampered' WHERE challenge_id = 3")
    with EventProducer(settings, "test") as producer:
        publish(producer, 3, SUBJECT, "fitbit", [{"steps": 1}], occurred_at=99)
    projector, worker = start_projector(settings)
    try:
        wait_for(lambda: stored_offset(settings) == 11, what="the 11th event projected")
        rows = evidence_rows(settings.pg_dsn)
        assert len(rows) == 11
        assert [r[4] for r in rows if r[0] == 3 and r[2] == "strava"] == ["tampered"]
    finally:
        worker.stop()


def test_text_that_copy_must_escape_is_stored_as_sent(settings: Settings) -> None:
    """Backslashes, tabs, newlines and carriage returns in every text field (the projector writes COPY's
    text format itself), JSON whitespace between tokens included; both the plain insert and the upsert."""
    records_json = '[\t{"note":"tab\\there, slash \\\\ \\"quoted\\" \\u00e9",\r\n"steps":\t7}]'
    subject, provider = "0xAbC\\def\tX", "strava\\x"
    raw_ref, evidence_hash = "s3://bucket/a\\b\tc\nd\re", "0x\\01\t"
    with EventProducer(settings, "test") as producer:
        for occurred_at, records in ((1_000, '[{"steps":1}]'), (2_000, records_json)):  # insert, then upsert
            producer.publish(
                EVIDENCE, "7", "EvidenceSubmitted",
                {"challenge_id": 7, "subject": subject, "provider": provider, "records_json": records,
                 "evidence_hash": f"{evidence_hash}{occurred_at}", "raw_ref": raw_ref},
                event_id=f"escape-{occurred_at}", occurred_at=occurred_at,
            )
            producer.flush()
            projector, worker = start_projector(settings)
            try:
                wait_for(lambda n=occurred_at // 1_000: stored_offset(settings) == n, what="the event projected")
            finally:
                worker.stop()
    [row] = evidence_rows(settings.pg_dsn)
    assert row[:3] == (7, subject.lower(), provider)
    assert json.loads(row[3]) == json.loads(records_json)
    assert (row[4], row[5]) == (f"{evidence_hash}2000", raw_ref)
    assert not dead_letters(settings)


def test_a_first_start_reads_a_topic_whose_head_was_removed_from_its_log_start(settings: Settings) -> None:
    """Without stored offsets the projector (and `lc tail`) reads from offset 0; where retention removed it, from
    the log start."""
    with EventProducer(settings, "test") as producer:
        for n in range(5):
            publish(producer, 7, SUBJECT, f"provider{n}", [{"n": n}], occurred_at=1_000 * (n + 1))
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "test-ends"})
    try:
        physical = settings.topic(EVIDENCE)
        partitions = consumer.list_topics(physical, timeout=10).topics[physical].partitions
        (partition,) = [p for p in partitions
                        if consumer.get_watermark_offsets(TopicPartition(physical, p), timeout=10)[1] > 0]
    finally:
        consumer.close()
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    for future in admin.delete_records([TopicPartition(physical, partition, 2)]).values():
        assert future.result().low_watermark == 2  # the first two events are gone
    # `lc tail` reads from offset 0 the same way
    assert [json.loads(line)["offset"] for line in tail(settings, EVIDENCE, follow=False)] == [2, 3, 4]
    projector, worker = start_projector(settings)
    try:
        wait_for(lambda: stored_offset(settings) == 5, what="the remaining 3 events projected")
        assert [r[2] for r in evidence_rows(settings.pg_dsn)] == ["provider2", "provider3", "provider4"]
    finally:
        worker.stop()


def test_an_event_time_no_table_can_hold_goes_to_the_dead_letter_topic(settings: Settings) -> None:
    """occurred_at becomes created_at/updated_at: a time PostgreSQL cannot store must not stop the projector."""
    with EventProducer(settings, "test") as producer:
        publish(producer, 9, SUBJECT, "strava", [{"n": 1}], occurred_at=2**62)
        publish(producer, 9, SUBJECT, "fitbit", [{"n": 2}], occurred_at=-1)
        publish(producer, 9, SUBJECT, "garmin", [{"n": 3}], occurred_at=3_000)
    projector, worker = start_projector(settings)
    try:
        wait_for(lambda: stored_offset(settings) == 3, what="all 3 messages consumed")
        assert [r[2] for r in evidence_rows(settings.pg_dsn)] == ["garmin"]
        reasons = sorted(d["payload"]["reason"] for d in dead_letters(settings))
        assert reasons == ["occurred_at -1 is out of range [0, 253402300799999]",
                           "occurred_at 4611686018427387904 is out of range [0, 253402300799999]"]
    finally:
        worker.stop()
