"""The chain writers' settings: their keys, the AIVM request, retries and receipts."""

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
