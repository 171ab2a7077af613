"""`lc run registrations-api`: challenge registrations over HTTP (`POST /challenges`, JSON body).

Authentication is the uploads' wallet signature headers (spec/evidence.md §6.1, shared code in
intake/auth.py: single-use signatures, kept across restarts). Answers:
- 202 `{event_id, challenge_id}`: published to lc.challenges.registered (and flushed) before answering;
- 401: not authenticated (missing, expired, bad or replayed signature); nothing is recorded, since
  anyone could fill the dead-letter topic with unsigned requests;
- 403: the signer is not the challenge's subject; 413: body too large; 422: invalid registration.
  These come from an identified wallet and go to lc.dlq with the reason and the original bytes.
Nothing reaches lc.challenges.registered unless the answer is 202.
"""

from __future__ import annotations

import logging
import time

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from domain.registration import MAX_BYTES, InvalidRegistration, parse_registration_bytes
from eventlog.consumer import StopFlag
from eventlog.producer import EventProducer
from intake.auth import AuthError, SignatureVerifier
from intake.registrations.publish import API_STAGE, publish_registration, refuse
from intake.replay import ReplayStore
from intake.serving import read_body_at_most, serve_until_stopped
from intake.settings import IntakeSettings

log = logging.getLogger("lc.registrations.api")


def build_app(producer: EventProducer, verifier: SignatureVerifier) -> Starlette:
    async def register(request: Request) -> JSONResponse:
        try:
            signer = verifier.verify(request.headers)
        except AuthError as exc:
            return JSONResponse({"error": "Authentication required", "code": exc.code, "reason": str(exc)}, 401)
        body = await read_body_at_most(request, MAX_BYTES)
        if body is None:
            return await _refused(413, f"registration exceeds {MAX_BYTES} bytes", b"", signer)
        try:
            registration = parse_registration_bytes(body)
        except InvalidRegistration as exc:
            return await _refused(422, f"invalid registration: {exc}", body, signer)
        if registration.subject != signer.lower():
            return await _refused(403, f"signer {signer} is not the challenge's subject {registration.subject}",
                                  body, signer, key=str(registration.challenge_id))
        event_id = await run_in_threadpool(
            publish_registration, producer, registration, source="http", registered_by=signer.lower(),
            occurred_at=int(time.time() * 1000))
        return JSONResponse({"event_id": event_id, "challenge_id": registration.challenge_id}, 202)

    async def _refused(status: int, reason: str, body: bytes, signer: str, key: str | None = None) -> JSONResponse:
        await run_in_threadpool(refuse, producer, stage=API_STAGE, reason=f"{reason} (from {signer})",
                                original=body, key=key)
        return JSONResponse({"error": "Forbidden" if status == 403 else reason}, status)

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/challenges", register, methods=["POST"]),
                             Route("/health", health, methods=["GET"])])


def run_registrations_api(settings: IntakeSettings, stop: StopFlag) -> None:
    host, _, port = settings.registrations_api_listen.rpartition(":")
    store = ReplayStore(settings.home_path / "registrations-api" / "used_signatures.sqlite")
    with EventProducer(settings, API_STAGE) as producer:
        app = build_app(producer, SignatureVerifier(store, window_ms=settings.upload_signature_window_ms))
        serve_until_stopped(app, host or "127.0.0.1", int(port), stop, name="registrations API")
    store.close()
