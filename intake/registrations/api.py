"""`lc run registrations-api`: challenge registrations over HTTP (`POST /challenges`, JSON body).

Authentication is the uploads' wallet signature headers (spec/evidence.md §6.1, shared code in
intake/auth.py: single-use signatures, kept across restarts). Answers:
- 202 `{event_id, challenge_id}`: published to lc.challenges.registered (and flushed) before answering;
- 401: not authenticated (missing, expired, bad or replayed signature); nothing is recorded, since
  anyone could fill the dead-letter topic with unsigned requests;
- 403: the signer is not the registration's subject, or the id is registered to another subject;
  409: the id's owner tries to change what its first registration fixed (model, rule, proof,
  timeline); 413: body too large (refused before it is read whole); 422: invalid registration
  (including JSON nested too deep, NaN, NUL, numbers out of range: domain.registration).
  These come from an identified wallet and go to lc.dlq with the reason and the original bytes.
Nothing reaches lc.challenges.registered unless the answer is 202. The owner binding is read from
lc.challenges.registered (intake/registrations/owners.py) before the server starts answering.
"""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from domain.registration import (
    MAX_BYTES,
    FrozenField,
    InvalidRegistration,
    NotOwner,
    parse_registration_bytes,
)
from eventlog.consumer import StopFlag
from eventlog.producer import EventProducer
from intake.auth import AuthError, SignatureVerifier
from intake.registrations.owners import RegistrationIndex
from intake.registrations.publish import API_STAGE, publish_registration, refuse
from intake.replay import ReplayStore
from intake.serving import read_body_at_most, serve_until_stopped
from intake.settings import IntakeSettings, listen_address

log = logging.getLogger("lc.registrations.api")


def build_app(producer: EventProducer, verifier: SignatureVerifier, owners: RegistrationIndex) -> Starlette:
    one_at_a_time = asyncio.Lock()  # check, publish and record as one step: no two conflicting accepts

    async def register(request: Request) -> JSONResponse:
        try:
            signer = verifier.verify(request.headers)
        except AuthError as exc:
            return JSONResponse({"error": "Authentication required", "code": exc.code, "reason": str(exc)}, 401)
        try:
            body = await read_body_at_most(request, MAX_BYTES)
        except ClientDisconnect:  # nobody is left to answer
            return JSONResponse({"error": "the client went away before the body was complete"}, 400)
        if body is None:
            return await _refused(413, f"registration exceeds {MAX_BYTES} bytes", b"", signer)
        try:
            registration = parse_registration_bytes(body)
        except InvalidRegistration as exc:
            return await _refused(422, f"invalid registration: {exc}", body, signer)
        except Exception as exc:  # a validator bug: the sender still gets a refusal, the log the traceback
            log.exception("registration of %d bytes from %s could not be validated", len(body), signer)
            return await _refused(422, f"invalid registration: unreadable ({type(exc).__name__})", body, signer)
        key = str(registration.challenge_id)
        if registration.subject != signer.lower():
            return await _refused(403, f"signer {signer} is not the challenge's subject {registration.subject}",
                                  body, signer, key=key)
        async with one_at_a_time:
            try:
                owners.check(registration)
            except NotOwner as exc:
                return await _refused(403, str(exc), body, signer, key=key)
            except FrozenField as exc:
                return await _refused(409, str(exc), body, signer, key=key)
            event_id = await run_in_threadpool(
                publish_registration, producer, registration, source="http", registered_by=signer.lower(),
                occurred_at=int(time.time() * 1000))
            owners.record(registration)
        return JSONResponse({"event_id": event_id, "challenge_id": registration.challenge_id}, 202)

    async def _refused(status: int, reason: str, body: bytes, signer: str, key: str | None = None) -> JSONResponse:
        try:
            await run_in_threadpool(refuse, producer, stage=API_STAGE, reason=f"{reason} (from {signer})",
                                    original=body, key=key)
        except Exception:  # the refusal is answered all the same; the log says the dead letter is missing
            log.exception("refused registration from %s could not be dead-lettered", signer)
        return JSONResponse({"error": "Forbidden" if status == 403 else reason, "reason": reason}, status)

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "registered": len(owners)})

    return Starlette(routes=[Route("/challenges", register, methods=["POST"]),
                             Route("/health", health, methods=["GET"])])


def run_registrations_api(settings: IntakeSettings, stop: StopFlag) -> None:
    host, port = listen_address(settings.registrations_api_listen, "LC_REGISTRATIONS_API_LISTEN")
    store = ReplayStore(settings.used_signatures_path)
    owners = RegistrationIndex(settings, "registrations-api")
    try:
        owners.catch_up()
        log.info("registrations API: %d registered challenge(s) read from the topic", len(owners))
        owners.follow()
        with EventProducer(settings, API_STAGE) as producer:
            app = build_app(producer, SignatureVerifier(store, window_ms=settings.upload_signature_window_ms), owners)
            serve_until_stopped(app, host, port, stop, name="registrations API")
    finally:
        owners.close()
        store.close()
