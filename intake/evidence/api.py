"""`lc run evidence-api`: JSON evidence over HTTP, published to lc.evidence (never inserted in a table).

- `POST /v1/evidence`: a wallet's own evidence (the original's `/api/aivm/intake` JSON submissions),
  signed with the uploads' wallet headers (intake/auth.py); the subject is the signer.
- `POST /v1/service/evidence`: the web app's server on a user's behalf (`/api/v1/evidence/submit-match`
  after it fetched the match, the FACEIT webhook after it checked the webhook's HMAC and found the
  wallets), with the service credential; the subject is in the body.
Body and checks: intake/evidence/submission.py. Answers:
- 202 `{event_id, evidence_hash, record_count, dropped}` (`dropped`: the impossible records left out,
  with their reasons): published (and flushed) before answering; the same
  evidence sent again is the same event id, and the projection keeps one row per (challenge,
  subject, provider), so a second submission replaces the first instead of failing as in the original;
- 401: not authenticated; nothing recorded (anyone could fill lc.dlq with anonymous requests);
- 413 body too large, 422 invalid: authenticated, so the reason and the body's first MiB go to lc.dlq.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from eventlog.consumer import StopFlag
from eventlog.producer import EventProducer
from eventlog.topics import EVIDENCE
from intake.auth import AuthError, ServiceCredential, SignatureVerifier
from intake.evidence.submission import MAX_BODY_BYTES, InvalidSubmission, parse_submission
from intake.replay import ReplayStore
from intake.serving import read_body_at_most, serve_until_stopped
from intake.settings import IntakeSettings, listen_address
from intake.uploads.accepted import DEAD_LETTER_BYTES, Publish
from intake.uploads.publish import PRODUCER_CONFIG, publish_with

log = logging.getLogger(__name__)

STAGE = "lc-evidence-api"
Refuse = Callable[[str, bytes], None]  # (reason, original bytes) to lc.dlq


def build_app(publish: Publish, refuse: Refuse, verifier: SignatureVerifier, service: ServiceCredential
              ) -> Starlette:
    async def accept(request: Request, signer: str | None, caller: str) -> JSONResponse:
        try:
            body = await read_body_at_most(request, MAX_BODY_BYTES)
        except ClientDisconnect:  # nobody is left to answer
            return JSONResponse({"error": "the client went away before the body was complete"}, 400)
        if body is None:
            reason = f"evidence exceeds {MAX_BODY_BYTES} bytes (from {caller})"
            await run_in_threadpool(refuse, reason, b"")
            return JSONResponse({"error": "too_large", "reason": reason}, 413)
        try:
            evidence, dropped = parse_submission(body, signer=signer)
        except InvalidSubmission as exc:
            await run_in_threadpool(refuse, f"invalid evidence from {caller}: {exc}", body[:DEAD_LETTER_BYTES])
            return JSONResponse({"error": "invalid", "reason": str(exc)}, 422)
        await run_in_threadpool(publish, evidence)
        return JSONResponse({"event_id": evidence.event_id, "evidence_hash": evidence.evidence_hash,
                             "record_count": len(evidence.records), "dropped": dropped}, 202)

    async def from_wallet(request: Request) -> JSONResponse:
        try:
            signer = verifier.verify(request.headers)
        except AuthError as exc:
            return JSONResponse({"error": "Authentication required", "code": exc.code, "reason": str(exc)}, 401)
        return await accept(request, signer, signer)

    async def from_service(request: Request) -> JSONResponse:
        try:
            service.verify(request.headers)
        except AuthError as exc:
            return JSONResponse({"error": "Authentication required", "code": exc.code, "reason": str(exc)}, 401)
        return await accept(request, None, "the web app's server")

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/v1/evidence", from_wallet, methods=["POST"]),
                             Route("/v1/service/evidence", from_service, methods=["POST"]),
                             Route("/health", health, methods=["GET"])])


def dead_letter_with(producer: EventProducer) -> Refuse:
    def refuse(reason: str, original: bytes) -> None:
        producer.dead_letter(stage=STAGE, reason=reason, source_topic=EVIDENCE, original=original)
        producer.flush()

    return refuse


def run_evidence_api(settings: IntakeSettings, stop: StopFlag) -> None:
    host, port = listen_address(settings.evidence_api_listen, "LC_EVIDENCE_API_LISTEN")
    store = ReplayStore(settings.used_signatures_path)
    with EventProducer(settings, STAGE, extra_config=dict(PRODUCER_CONFIG)) as producer:
        app = build_app(publish_with(producer), dead_letter_with(producer),
                        SignatureVerifier(store, window_ms=settings.upload_signature_window_ms),
                        ServiceCredential(settings.intake_service_token))
        serve_until_stopped(app, host, port, stop, name="evidence API")
    store.close()
