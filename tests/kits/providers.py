"""A scripted provider API on httpx.MockTransport: routes by method and path, answers in turn
(the last answer repeats), records every request. Tests feed it the real fixture bytes."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from indexers.providers.clients.http import ProviderHttp, RetryPolicy

Answer = httpx.Response | Callable[[httpx.Request], httpx.Response]


def reply(status: int = 200, body: bytes | Any = b"[]", headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers={"content-type": "application/json", **(headers or {})})


def fixture_bytes(root: Path, relative: str) -> bytes:
    return (root / relative).read_bytes()


def fixture_json(root: Path, relative: str) -> Any:
    return json.loads(fixture_bytes(root, relative))


@dataclass
class FakeApi:
    routes: dict[tuple[str, str], list[Answer]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def on(self, method: str, path: str, *answers: Answer) -> FakeApi:
        self.routes[(method, path)] = list(answers)
        return self

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answers = self.routes.get((request.method, request.url.path))
        if not answers:
            return reply(404, {"message": f"no route {request.method} {request.url.path}"})
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        return answer(request) if callable(answer) else answer

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handle))

    def paths(self, method: str | None = None) -> list[str]:
        return [r.url.path for r in self.requests if method is None or r.method == method]


@dataclass
class RecordedSleep:
    delays: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def provider_http(provider: str, api: FakeApi, sleep: RecordedSleep, now: float = 1_760_000_000.0) -> ProviderHttp:
    return ProviderHttp(provider, api.client(), policy=RetryPolicy(max_attempts=4, base_delay=1.0), sleep=sleep, clock=lambda: now)
