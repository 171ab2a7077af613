"""`POST /v1/uploads`: a signed, streamed file upload that becomes an evidence fact.

Request: the raw file as the body (any content type; not multipart, so a multi-GB export streams
straight to disk), the target in the query string:

    POST /v1/uploads?challenge_id=42&provider=apple&subject=0xAbc...&filename=export.zip
    x-lc-address: 0xAbc...   x-lc-timestamp: <Unix ms>   x-lc-signature: <EIP-191 of lightchallenge:<ts>>

`subject` is optional and defaults to the signer; when given it must be the signer (403 otherwise).
`filename` is optional; Google Fit session and per-day files carry their offset or date in it.
`provider` is apple (or apple_health), garmin, or googlefit (or google_fit).

Answers (JSON): 200 `{ok, provider, kind, record_count, evidence_hash, raw_ref, skipped, dropped}`
(`dropped`: why impossible records were left out, the first few); 400 bad query; 401
`{error: missing|malformed|expired|bad_signature|replayed}`; 403 subject is not the signer; 408
`{error: body_stalled}` (no part of the body for `upload_body_idle_seconds`); 413 `{error: too_large}`
(the body, what a ZIP declares it unpacks to, a ZIP bomb's ratio, a JSON or CSV document, Apple's
per-day totals); 422 `{error: wrong_kind|corrupt_zip|unsafe_xml|malformed|no_records|too_much_evidence|
unreadable}` (an oversized XML token or text, or nesting too deep, is `unsafe_xml`); 503 the
publisher failed (the raw file is kept; the client may retry). Every refusal of input is a 4xx with
a reason: a parser failure that is not an `UploadRejected` (a bug) is logged with its traceback and
answered 422 `unreadable`, never 500. Authenticated refusals go to lc.dlq (reason, origin, a bounded
excerpt of the bytes); when even that fails, the refusal is still answered.
The headers are checked before the body is read. Parsing runs in a worker thread, one upload at a
time (the parsers' memory bound holds per upload, so the server's holds whatever the concurrency),
and the server keeps answering others meanwhile. Only an accepted upload is kept (content-addressed)
and handed to the publisher; a refused one leaves nothing behind, and partial bodies a killed
process left in `incoming/` are removed at start.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from domain.untrusted import INT64_MAX, ascii_decimal
from eventlog.consumer import StopFlag
from indexers.providers.uploads.detect import ParsedUpload, detect_and_parse, upload_provider
from indexers.providers.uploads.errors import UnpackedTooLarge, UploadRejected
from intake.auth import AuthError, Clock, SignatureVerifier, wall_clock_ms
from intake.replay import ReplayStore
from intake.settings import IntakeSettings, listen_address
from intake.uploads import storage
from intake.uploads.accepted import (
    DEAD_LETTER_BYTES,
    AcceptedUpload,
    Publish,
    Refuse,
    RefusedUpload,
)

log = logging.getLogger(__name__)

PARSE_SLOTS = 1
MAX_TEXT_PARAM = 200


@dataclass(frozen=True)
class UploadServerConfig:
    upload_root: Path
    max_bytes: int
    signature_window_ms: int = 300_000
    body_idle_seconds: float | None = 60.0
    used_signatures: Path | None = None  # the intakes' shared store; None = <upload_root>/used_signatures.sqlite

    @classmethod
    def from_settings(cls, settings: IntakeSettings) -> UploadServerConfig:
        return cls(settings.upload_path, settings.upload_max_bytes, settings.upload_signature_window_ms,
                   settings.upload_body_idle_seconds, settings.used_signatures_path)


class BadRequest(Exception):
    pass


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def _query_target(request: Request) -> tuple[int, str, str | None, str | None]:
    params = request.query_params
    challenge_id = ascii_decimal(params.get("challenge_id", "").strip(), max_digits=19)
    if challenge_id is None or not 0 < challenge_id <= INT64_MAX:
        raise BadRequest(f"challenge_id must be a decimal integer from 1 to {INT64_MAX}")
    provider = params.get("provider", "")
    if not provider:
        raise BadRequest("provider is required (apple, garmin or googlefit)")
    subject, file_name = params.get("subject") or None, params.get("filename") or None
    for name, value in (("provider", provider), ("subject", subject), ("filename", file_name)):
        if value is not None and (len(value) > MAX_TEXT_PARAM or not value.isprintable()):
            raise BadRequest(f"{name} must be printable and at most {MAX_TEXT_PARAM} characters")
    return challenge_id, provider, subject, file_name


def _declared_length(request: Request) -> int | None:
    declared = request.headers.get("content-length")
    return None if declared is None else ascii_decimal(declared.strip(), max_digits=20)


def create_app(config: UploadServerConfig, publish: Publish, *, clock: Clock = wall_clock_ms,
               refuse: Refuse | None = None) -> Starlette:
    """`refuse` receives every authenticated upload that fails validation (the stage sends it to lc.dlq)."""
    config.upload_root.mkdir(parents=True, exist_ok=True)
    removed = storage.clean_incoming(config.upload_root)
    if removed:
        log.info("removed %d partial upload(s) left in %s", removed, config.upload_root / storage.INCOMING)
    replay_store = ReplayStore(config.used_signatures or config.upload_root / "used_signatures.sqlite")
    verifier = SignatureVerifier(replay_store, clock=clock, window_ms=config.signature_window_ms)
    parse_slots = anyio.CapacityLimiter(PARSE_SLOTS)

    async def upload(request: Request) -> JSONResponse:
        try:
            challenge_id, provider_name, subject, file_name = _query_target(request)
            provider = upload_provider(provider_name)
        except (BadRequest, UploadRejected) as exc:  # an unknown provider is a bad request, not a bad file
            return _error(400, "bad_request", str(exc))
        try:
            signer = verifier.verify(request.headers)
        except AuthError as exc:
            return _error(401, exc.code, str(exc))
        if subject is not None and subject.strip().lower() != signer.lower():
            return _error(403, "forbidden", f"signed by {signer}, not by the subject {subject}")
        declared = _declared_length(request)
        if declared is not None and declared > config.max_bytes:
            return _error(413, "too_large", f"the upload is larger than the limit of {config.max_bytes} bytes")

        try:
            body = await storage.receive_to_file(request.stream(), config.upload_root, config.max_bytes,
                                                 config.body_idle_seconds)
        except storage.BodyTooLarge as exc:
            return _error(413, "too_large", str(exc))
        except storage.BodyStalled as exc:
            return _error(408, "body_stalled", str(exc))
        except ClientDisconnect:  # nobody is left to answer; the partial file is already removed
            log.info("an upload for challenge %s was abandoned by its client mid-body", challenge_id)
            return _error(400, "disconnected", "the client went away before the body was complete")
        kept = False
        try:
            if body.size == 0:
                return _error(422, "wrong_kind", "the upload is empty")
            try:
                parsed: ParsedUpload = await anyio.to_thread.run_sync(
                    _parse, body.path, provider, file_name, signer, limiter=parse_slots)
            except UploadRejected as exc:
                status = 413 if exc.code == UnpackedTooLarge.code else 422
                await _dead_letter(body, challenge_id, signer, provider_name, f"{exc.code}: {exc}")
                return _error(status, exc.code, str(exc))
            except Exception as exc:  # a parser bug: the sender still gets a refusal, the log the traceback
                log.exception("upload of %s bytes for challenge %s could not be parsed", body.size, challenge_id)
                await _dead_letter(body, challenge_id, signer, provider_name,
                                   f"unreadable: {type(exc).__name__}: {str(exc)[:200]}")
                return _error(422, "unreadable", "the upload could not be read as a file of this provider")

            storage.keep(body, config.upload_root)
            kept = True
        finally:
            if not kept:
                storage.discard(body)
        accepted = AcceptedUpload(challenge_id, signer, parsed.provider, parsed.records, parsed.evidence_hash,
                                  body.raw_ref)
        try:
            await anyio.to_thread.run_sync(publish, accepted)
        except Exception:
            log.exception("evidence of upload %s could not be published", body.raw_ref)
            return _error(503, "unavailable", "the upload is stored but could not be published: retry later")
        return JSONResponse({
            "ok": True, "provider": parsed.provider, "kind": parsed.kind, "record_count": len(parsed.records),
            "evidence_hash": parsed.evidence_hash, "raw_ref": body.raw_ref, "skipped": parsed.skipped,
            "dropped": parsed.dropped,
        })

    async def _dead_letter(body: storage.ReceivedBody, challenge_id: int, subject: str, provider: str,
                           reason: str) -> None:
        if refuse is None:
            return
        try:
            await anyio.to_thread.run_sync(refuse, _refused(body, challenge_id, subject, provider, reason))
        except Exception:  # the refusal is answered all the same; the log says the dead letter is missing
            log.exception("refused upload of %s bytes for challenge %s could not be dead-lettered", body.size,
                          challenge_id)

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            replay_store.close()

    return Starlette(
        routes=[Route("/v1/uploads", upload, methods=["POST"]), Route("/health", health, methods=["GET"])],
        lifespan=lifespan,
    )


def _parse(path: Path, provider: str, file_name: str | None, signer: str) -> ParsedUpload:
    try:
        return detect_and_parse(path, provider, file_name=file_name, subject=signer)
    finally:
        release_freed_memory()


def release_freed_memory() -> None:
    """Hand what a parse freed back to the system (glibc keeps freed heap otherwise), so the server's
    resident size returns near its base after each upload instead of creeping up with fragmentation."""
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _libc()


def _refused(body: storage.ReceivedBody, challenge_id: int, subject: str, provider: str, reason: str) -> RefusedUpload:
    with body.path.open("rb") as stream:
        head = stream.read(DEAD_LETTER_BYTES)
    return RefusedUpload(challenge_id, subject, provider, reason, body.sha256, body.size, head)


def app_from_settings(settings: IntakeSettings, publish: Publish | None = None, refuse: Refuse | None = None) -> Starlette:
    """The app with the Kafka publisher of `lc.evidence` and dead letters to `lc.dlq`, unless given others."""
    from intake.uploads.publish import make_dead_letterer, make_publisher

    return create_app(UploadServerConfig.from_settings(settings), publish or make_publisher(settings),
                      refuse=refuse or make_dead_letterer(settings))


def run_uploads_api(settings: IntakeSettings, stop: StopFlag) -> None:
    """The `uploads-api` stage: POST /v1/uploads on `settings.upload_listen` until `stop` is set."""
    from intake.serving import serve_until_stopped

    host, port = listen_address(settings.upload_listen, "LC_UPLOAD_LISTEN")
    serve_until_stopped(app_from_settings(settings), host, port, stop, name="uploads API")
