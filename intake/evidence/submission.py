"""A JSON evidence submission: validation of the untrusted body and the evidence fact it becomes. Pure.

Body (one JSON object): `challenge_id` (0 = preview, as the original), `provider`, `records` (a JSON
array of objects, the provider's normalised records, spec/evidence.md §3), optional `raw_ref`; from a
wallet, `subject` may be omitted (it is the signer) and must be the signer when given; from the web
app's server, `subject` (a 0x address) is required and `evidence_hash` may be given (the FACEIT
webhook's `faceit_webhook_<match>_<wallet>`), else it is computed as the collector or the uploads API
computes it for the provider (`evidence_hash_for`; spec/evidence.md §4.3), so the same evidence has
the same hash whichever way it came in. Records that cannot have happened are left out with a note
(domain/evidence_records.py, as the uploads, the collector and `lc ingest evidence` do); a given hash
is then not kept. What is accepted passes the checks every later stage makes (domain/evidence.py,
domain/untrusted.py), so it can never stop the evaluator or the projector.
"""

from __future__ import annotations

from typing import NamedTuple

from domain import untrusted
from domain.accounts import ADDRESS, PROVIDER_NAME
from domain.evidence import MAX_DATA_BYTES, MAX_RECORDS, validate
from domain.evidence_records import screen_records
from indexers.providers.uploads.detect import evidence_hash_for
from intake.bodies import json_object
from intake.uploads.accepted import AcceptedUpload
from intake.uploads.publish import evidence_payload

MAX_BODY_BYTES = MAX_DATA_BYTES + 64 * 1024
MAX_HASH_CHARS = 200
MAX_RAW_REF_CHARS = 500
USER_FIELDS = frozenset({"challenge_id", "subject", "provider", "records", "raw_ref"})
SERVICE_FIELDS = USER_FIELDS | {"evidence_hash"}


class InvalidSubmission(ValueError):
    """The submission cannot be accepted; the message is the reason, fit for the caller and lc.dlq."""


ORIGIN = "json"  # names the event ids: json:<challenge>:<subject>:<provider>:<hash>


class Accepted(NamedTuple):
    evidence: AcceptedUpload  # published like an upload's
    dropped: list[str]  # the records left out, each with its reason


def parse_submission(raw: bytes, *, signer: str | None) -> Accepted:
    """The accepted evidence; `signer`: the wallet that signed the request, or None for the web app's
    server."""
    document = json_object(raw, max_bytes=MAX_BODY_BYTES, allowed=USER_FIELDS if signer is not None else SERVICE_FIELDS,
                           invalid=InvalidSubmission)
    try:
        challenge_id = untrusted.check_int("challenge_id", document.get("challenge_id"), 0)
    except untrusted.UntrustedInput as exc:
        raise InvalidSubmission(str(exc)) from None
    subject = _subject(document.get("subject"), signer)
    provider = document.get("provider")
    if not isinstance(provider, str) or not PROVIDER_NAME.match(provider):
        raise InvalidSubmission(f"provider must be a provider name (lower-case letters, digits, _), got {provider!r}")
    records = document.get("records")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InvalidSubmission("records must be a JSON array of objects")
    if not records:
        raise InvalidSubmission("records is empty: there is nothing to evaluate")
    screened = screen_records(records)
    if not screened.kept:
        raise InvalidSubmission("no record could have happened: " + "; ".join(map(str, screened.dropped[:5])))
    given_hash = document.get("evidence_hash")
    if given_hash is not None and (not isinstance(given_hash, str) or not given_hash.strip()
                                   or len(given_hash) > MAX_HASH_CHARS):
        raise InvalidSubmission(f"evidence_hash must be a non-empty string of at most {MAX_HASH_CHARS} characters")
    raw_ref = document.get("raw_ref")
    if raw_ref is not None and (not isinstance(raw_ref, str) or len(raw_ref) > MAX_RAW_REF_CHARS):
        raise InvalidSubmission(f"raw_ref must be a string of at most {MAX_RAW_REF_CHARS} characters")
    if len(records) > MAX_RECORDS:
        raise InvalidSubmission(f"{len(records)} records exceed the limit of {MAX_RECORDS}")
    try:
        hash_ = given_hash if given_hash and not screened.dropped else evidence_hash_for(provider, screened.kept)
        submission = AcceptedUpload(challenge_id, subject, provider, screened.kept, hash_, raw_ref, origin=ORIGIN)
        validate(evidence_payload(submission), 0)  # the checks of every stage that reads lc.evidence
    except (ValueError, KeyError) as exc:
        raise InvalidSubmission(str(exc)) from None
    return Accepted(submission, [str(note) for note in screened.dropped])


def _subject(value: object, signer: str | None) -> str:
    if signer is not None:
        if value is not None and (not isinstance(value, str) or value.strip().lower() != signer.lower()):
            raise InvalidSubmission(f"subject {value!r} is not the signer {signer}")
        return signer
    if not isinstance(value, str) or not ADDRESS.match(value):
        raise InvalidSubmission(f"subject must be a 0x-prefixed 20-byte hex address, got {value!r}")
    return value


