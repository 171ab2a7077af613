"""`lc run accounts-api`: linked accounts and identity bindings over HTTP, published to lc.accounts.

User actions, signed with the uploads' wallet headers (intake/auth.py); the wallet is the signer:
- `POST /v1/accounts` `{provider, external_id}`: a manual link (OpenDota, Riot, FACEIT ids);
- `DELETE /v1/accounts/{provider}`: unlink (AccountUnlinked: the row goes, and with the next
  compaction of lc.accounts the tokens are gone from the topic too);
- `DELETE /v1/identities/{platform}`: unbind (IdentityUnbound).
The web app's server, with the service credential:
- `POST /v1/service/accounts` `{subject, provider, external_id?, access_token?, refresh_token?,
  expires_at?}`: an OAuth callback's result; the tokens are sealed here with LC_OAUTH_ENCRYPTION_KEY
  (checked at start against the tokens already stored), nothing unsealed reaches the topic or a log;
- `POST /v1/service/identities` `{wallet, platform, platform_id, handle?, signed_by?, signature?, ts?}`:
  the Steam return route's binding (IdentityBound).
Answers: 202 `{event_id}` once published and flushed; 401 not authenticated (nothing recorded);
413/422 refused (to lc.dlq with the reason only: a body here may hold tokens, so it is never copied);
503 a link with tokens while no encryption key is configured.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from eventlog.consumer import StopFlag
from eventlog.producer import EventProducer
from eventlog.topics import ACCOUNTS
from indexers.providers.accounts import (
    InvalidAccount,
    check_key_opens_stored_tokens,
    publish_account_unlinked,
    publish_identity_binding,
    publish_identity_unbound,
    publish_linked_account,
)
from indexers.providers.crypto import TokenCipher, cipher_from_key
from intake.accounts.requests import (
    MAX_BODY_BYTES,
    AccountLink,
    InvalidRequest,
    parse_binding,
    parse_service_link,
    parse_wallet_link,
    provider_name,
)
from intake.auth import AuthError, ServiceCredential, SignatureVerifier, wall_clock_ms
from intake.replay import ReplayStore
from intake.serving import read_body_at_most, serve_until_stopped
from intake.settings import IntakeSettings, listen_address

log = logging.getLogger(__name__)

STAGE = "lc-accounts-api"
Handler = Callable[[Request], Awaitable[JSONResponse]]


class AccountsPublisher:
    """Publishes each accepted request to lc.accounts and flushes before the answer."""

    def __init__(self, producer: EventProducer, cipher: TokenCipher | None) -> None:
        self.producer = producer
        self.cipher = cipher

    def link(self, link: AccountLink, at: int) -> str:
        event_id = publish_linked_account(self.producer, self.cipher, link.subject, link.provider, link.external_id,
                                          link.tokens, id_prefix="account-api", occurred_at=at)
        self.producer.flush()
        return event_id

    def unlink(self, subject: str, provider: str, at: int) -> str:
        event_id = publish_account_unlinked(self.producer, subject, provider, occurred_at=at, id_prefix="account-api")
        self.producer.flush()
        return event_id

    def bind(self, raw: bytes, at: int) -> str:
        event_id = publish_identity_binding(self.producer, parse_binding(raw, at))
        self.producer.flush()
        return event_id

    def unbind(self, wallet: str, platform: str, at: int) -> str:
        event_id = publish_identity_unbound(self.producer, wallet, platform, ts=at)
        self.producer.flush()
        return event_id

    def refuse(self, reason: str) -> None:
        self.producer.dead_letter(stage=STAGE, reason=reason, source_topic=ACCOUNTS, original=b"")
        self.producer.flush()


def build_app(publisher: AccountsPublisher, verifier: SignatureVerifier, service: ServiceCredential) -> Starlette:
    def unauthenticated(exc: AuthError) -> JSONResponse:
        return JSONResponse({"error": "Authentication required", "code": exc.code, "reason": str(exc)}, 401)

    async def refused(status: int, reason: str) -> JSONResponse:
        await run_in_threadpool(publisher.refuse, reason)
        return JSONResponse({"error": "too_large" if status == 413 else "invalid", "reason": reason}, status)

    async def published(action: Callable[[], str], caller: str) -> JSONResponse:
        try:
            event_id = await run_in_threadpool(action)
        except (InvalidRequest, InvalidAccount) as exc:
            return await refused(422, f"{exc} (from {caller})")
        return JSONResponse({"event_id": event_id}, 202)

    async def body_of(request: Request, caller: str) -> bytes | JSONResponse:
        try:
            body = await read_body_at_most(request, MAX_BODY_BYTES)
        except ClientDisconnect:  # nobody is left to answer
            return JSONResponse({"error": "the client went away before the body was complete"}, 400)
        if body is None:
            return await refused(413, f"body exceeds {MAX_BODY_BYTES} bytes (from {caller})")
        return body

    def wallet_route(handle: Callable[[Request, str], Awaitable[JSONResponse]]) -> Handler:
        async def route(request: Request) -> JSONResponse:
            try:
                signer = verifier.verify(request.headers)
            except AuthError as exc:
                return unauthenticated(exc)
            return await handle(request, signer)
        return route

    def service_route(handle: Callable[[Request, str], Awaitable[JSONResponse]]) -> Handler:
        async def route(request: Request) -> JSONResponse:
            try:
                service.verify(request.headers)
            except AuthError as exc:
                return unauthenticated(exc)
            return await handle(request, "the web app's server")
        return route

    async def link_own(request: Request, signer: str) -> JSONResponse:
        body = await body_of(request, signer)
        if isinstance(body, JSONResponse):
            return body
        return await published(lambda: publisher.link(parse_wallet_link(body, signer), wall_clock_ms()), signer)

    async def link_for_user(request: Request, caller: str) -> JSONResponse:
        body = await body_of(request, caller)
        if isinstance(body, JSONResponse):
            return body
        try:
            link = parse_service_link(body)
        except InvalidRequest as exc:
            return await refused(422, f"{exc} (from {caller})")
        if link.tokens is not None and publisher.cipher is None:
            return JSONResponse({"error": "unavailable", "reason": "tokens cannot be sealed: LC_OAUTH_ENCRYPTION_KEY "
                                 "is not set"}, 503)
        return await published(lambda: publisher.link(link, wall_clock_ms()), caller)

    async def unlink(request: Request, signer: str) -> JSONResponse:
        provider = request.path_params["provider"]
        return await published(lambda: publisher.unlink(signer.lower(), provider_name(provider), wall_clock_ms()),
                               signer)

    async def bind(request: Request, caller: str) -> JSONResponse:
        body = await body_of(request, caller)
        if isinstance(body, JSONResponse):
            return body
        return await published(lambda: publisher.bind(body, wall_clock_ms()), caller)

    async def unbind(request: Request, signer: str) -> JSONResponse:
        platform = request.path_params["platform"]
        return await published(
            lambda: publisher.unbind(signer.lower(), provider_name(platform, "platform"), wall_clock_ms()), signer)

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(routes=[
        Route("/v1/accounts", wallet_route(link_own), methods=["POST"]),
        Route("/v1/accounts/{provider}", wallet_route(unlink), methods=["DELETE"]),
        Route("/v1/identities/{platform}", wallet_route(unbind), methods=["DELETE"]),
        Route("/v1/service/accounts", service_route(link_for_user), methods=["POST"]),
        Route("/v1/service/identities", service_route(bind), methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ])


def sealing_cipher(settings: IntakeSettings, oauth_encryption_key: str) -> TokenCipher | None:
    """The cipher that seals tokens, once it is known to open those already stored; None without a key."""
    if not oauth_encryption_key:
        return None
    cipher = cipher_from_key(oauth_encryption_key)
    check_key_opens_stored_tokens(settings.pg_dsn, cipher)
    return cipher


def run_accounts_api(settings: IntakeSettings, stop: StopFlag, *, oauth_encryption_key: str) -> None:
    host, port = listen_address(settings.accounts_api_listen, "LC_ACCOUNTS_API_LISTEN")
    cipher = sealing_cipher(settings, oauth_encryption_key)
    store = ReplayStore(settings.used_signatures_path)
    with EventProducer(settings, STAGE) as producer:
        app = build_app(AccountsPublisher(producer, cipher),
                        SignatureVerifier(store, window_ms=settings.upload_signature_window_ms),
                        ServiceCredential(settings.intake_service_token))
        serve_until_stopped(app, host, port, stop, name="accounts API")
    store.close()
