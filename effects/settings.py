"""The chain writers' settings: their keys, the AIVM request and its recovery, concurrency, retries,
receipts and stuck transactions, and who operator commands are recorded as."""

from __future__ import annotations

from dataclasses import dataclass

from eventlog.config import CoreSettings, setting


@dataclass(frozen=True, repr=False)
class WriterSettings(CoreSettings):
    private_key: str = setting("", "private key of the chain writers' wallet (0x-hex)", secret=True)
    finalizer_private_key: str = setting(
        "", "private key of the finalizer (ChallengePay dispatcher: submitProofFor, finalize); empty = LC_PRIVATE_KEY",
        secret=True,
    )
    aivm_request_fee_wei: int = setting(10**15, "fee (wei) the AIVM worker sends with requestInferenceV2")
    aivm_max_attempts: int = setting(
        10, "attempts of an AIVM job (request + bindings) before it is dead; also the finalizer's attempts per proof"
    )
    aivm_max_requests: int = setting(
        3, "AIVM requests per job (the first and the re-requests after one expired) before the job is dead"
    )
    aivm_request_min_window_seconds: int = setting(
        0, "a job is (re-)requested only while chain time is at least this many seconds before its proof deadline"
    )
    aivm_worker_concurrency: int = setting(2, "AIVM jobs one worker instance works on at once")
    aivm_request_scan_from_block: int = setting(
        0, "first block searched for the worker wallet's earlier AIVM requests when a job is resumed or retried"
    )
    registry_private_key: str = setting(
        "", "MetadataRegistry owner key of the registry writer; empty = the writer records `skipped`", secret=True
    )
    metadata_base_url: str = setting(
        "", "base of the metadata URIs the registry writer sets (<base>/api/challenges/meta/<id>); empty = skipped"
    )
    writer_backoff_seconds: float = setting(2.0, "chain writers: delay before the first retry; doubles per attempt")
    writer_backoff_max_seconds: float = setting(300.0, "chain writers: longest delay between two retries")
    writer_receipt_timeout_seconds: float = setting(120.0, "chain writers: how long to wait for a receipt")
    writer_replace_after_seconds: float = setting(
        60.0, "chain writers: a transaction still pending after this long is sent again with the same nonce and a "
              "higher fee (0 = never)"
    )
    operator: str = setting("", "who operator commands (lc jobs, lc registry) are recorded as; empty = the OS user")
