"""The HTTP policy every provider client shares: timeouts, 429 honouring Retry-After, 5xx and
transport errors with bounded exponential backoff, JSON decoding, errors without secrets."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from indexers.providers.clients.base import (
    Clock,
    ProviderRequestError,
    ProviderShapeError,
    ProviderUnavailableError,
)
from indexers.providers.records import RecordShapeError

log = logging.getLogger(__name__)

Sleep = Callable[[float], None]
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4  # attempts in all, the first included
    base_delay: float = 1.0  # seconds before the first retry; doubles each time
    max_delay: float = 60.0
    max_retry_after: float = 600.0  # a longer Retry-After is not waited out: the fetch fails instead

    def backoff(self, retry: int) -> float:
        return min(self.max_delay, self.base_delay * 2 ** (retry - 1))


def retry_after_seconds(response: httpx.Response, now: float) -> float | None:
    """Seconds the server asked to wait: Retry-After (seconds or HTTP date), else RateLimit-Reset."""
    value = response.headers.get("retry-after")
    if value is not None:
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError):
            return None
    reset = response.headers.get("ratelimit-reset")  # FACEIT sends this instead
    if reset is not None and reset.strip().isdigit():
        return float(reset.strip())
    if "x-ratelimit-limit" in response.headers:
        # Strava sends no Retry-After; its short window resets at each quarter hour (UTC).
        return float(900 - int(now) % 900)
    return None


def describe(method: str, url: str | httpx.URL) -> str:
    """`GET /path` without host and query: queries can hold API keys."""
    return f"{method} {urlsplit(str(url)).path}"


class ProviderHttp:
    """One provider's view of a shared httpx.Client under the retry policy."""

    def __init__(
        self,
        provider: str,
        client: httpx.Client,
        *,
        policy: RetryPolicy | None = None,
        sleep: Sleep = time.sleep,
        clock: Clock = time.time,
    ) -> None:
        self.provider = provider
        self.client = client
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.clock = clock

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """The first answer that is neither 429 nor 5xx (any 2xx or 4xx, for the caller to judge)."""
        what = describe(method, url)
        last_problem = ""
        for attempt in range(1, self.policy.max_attempts + 1):
            try:
                response = self.client.request(method, url, **kwargs)
            except httpx.TransportError as exc:  # timeouts included
                last_problem = f"{type(exc).__name__}"
                delay = self.policy.backoff(attempt)
            else:
                if response.status_code != 429 and response.status_code < 500:
                    return response
                last_problem = f"HTTP {response.status_code}"
                delay = self.policy.backoff(attempt)
                if response.status_code == 429:
                    asked = retry_after_seconds(response, self.clock())
                    if asked is not None:
                        if asked > self.policy.max_retry_after:
                            raise ProviderUnavailableError(
                                self.provider, f"{self.provider} {what} → 429, Retry-After {asked:.0f}s exceeds the wait limit"
                            )
                        delay = asked
            if attempt == self.policy.max_attempts:
                break
            log.warning("%s %s: %s, retry %d in %.1fs", self.provider, what, last_problem, attempt, delay)
            self.sleep(delay)
        raise ProviderUnavailableError(
            self.provider, f"{self.provider} {what} → {last_problem} after {self.policy.max_attempts} attempts"
        )

    def expect_json(self, response: httpx.Response) -> Any:
        """The decoded body of a 2xx answer; a non-2xx is a ProviderRequestError, bad JSON a shape error."""
        what = describe(response.request.method, response.request.url)
        if not response.is_success:
            raise ProviderRequestError(
                self.provider, f"{self.provider} {what} → {response.status_code} {response.reason_phrase}", response.status_code
            )
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ProviderShapeError(self.provider, f"body is not JSON ({exc})", source=what, body=response.content) from None

    def parse(self, response: httpx.Response, parser: Callable[[Any], T]) -> T:
        """`parser` applied to the JSON of a 2xx answer; its RecordShapeError becomes a shape error
        carrying the response's original bytes."""
        body = self.expect_json(response)
        try:
            return parser(body)
        except RecordShapeError as exc:
            what = describe(response.request.method, response.request.url)
            raise ProviderShapeError(self.provider, str(exc), source=what, body=response.content) from None

    def get_json(self, url: str, *, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None) -> Any:
        return self.expect_json(self.request("GET", url, params=params, headers=headers))


def new_http_client(timeout_seconds: float, transport: httpx.BaseTransport | None = None) -> httpx.Client:
    return httpx.Client(timeout=httpx.Timeout(timeout_seconds), transport=transport, follow_redirects=False)


class _RedactQuerySecrets(logging.Filter):
    """httpx logs every request URL at INFO; mask key-like query parameters in those lines."""

    _pattern = re.compile(r"((?:api_key|key|token|access_token|refresh_token)=)[^&\s\"']+", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(self._pattern.sub(r"\1***", str(a)) if isinstance(a, str | httpx.URL) else a for a in record.args)
        record.msg = self._pattern.sub(r"\1***", str(record.msg))
        return True


logging.getLogger("httpx").addFilter(_RedactQuerySecrets())
