"""All five clients built from the settings (`build_clients`) against a real local HTTP server that
serves the fixture files in place: base URLs are configurable and the real httpx transport works."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from cli.settings import Settings
from indexers.providers.clients import LinkedAccount, OAuthTokens, TimeWindow, build_clients
from indexers.providers.records import STEAM64_BASE

NOW = 1_760_000_000


def routes(root: Path) -> dict[str, Path]:
    return {
        "/strava/api/v3/athlete/activities": root / "strava/athlete_activities_after_before_2018-11.json",
        "/fitbit/1/user/-/activities/steps/date/2018-11-01/2018-12-01.json": root / "fitbit/activities_steps_date_timeseries_7d.json",
        "/fitbit/1/user/-/activities/list.json": root / "fitbit/activities_steps_date_timeseries_empty.json",
        "/opendota/api/players/101695162/matches": root / "opendota/players_101695162_matches_significant0_first40.json",
        "/riot/lol/match/v5/matches/by-puuid/P/ids": root / "riot/match_v5_ids_by_puuid_EUW1.json",
        "/riot/lol/match/v5/matches/EUW1_6281337448": root / "riot/match_v5_match_EUW1_6281337448.json",
        "/faceit/players": root / "faceit/players_lookup_player_details.json",
        "/faceit/players/ffe3566c-9574-4f1b-8012-bf4d42aeb898/history": root / "faceit/players_history_cs2.json",
    }


@pytest.fixture
def server(shared_fixtures: Path) -> Iterator[str]:
    table = routes(shared_fixtures)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/fitbit/1/user/-/activities/list.json":
                body = b'{"activities": [], "pagination": {"next": ""}}'
            elif path in table:
                body = table[path].read_bytes()
            else:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_build_clients_against_a_local_server(server: str) -> None:
    settings = Settings.from_env({}).replace(
        strava_base_url=f"{server}/strava", fitbit_base_url=f"{server}/fitbit", opendota_base_url=f"{server}/opendota",
        riot_base_url=f"{server}/riot", riot_api_key="k", faceit_base_url=f"{server}/faceit", faceit_api_key="k",
        provider_timeout_seconds=5.0,
    )
    clients = build_clients(settings, clock=lambda: NOW, sleep=lambda _s: None)
    tokens = OAuthTokens("a", "r", NOW + 3600)
    window = TimeWindow(1541088000, 1543683600)  # 2018-11-01 .. 2018-12-01

    assert len(clients["strava"].fetch(LinkedAccount("0xa", "strava", "1", tokens), window).records) == 7
    assert len(clients["fitbit"].fetch(LinkedAccount("0xa", "fitbit", "U", tokens), window).records) == 7
    dota = clients["opendota"].fetch(LinkedAccount("0xa", "opendota", str(STEAM64_BASE + 101695162)), TimeWindow(0, NOW))
    assert len(dota.records) == 40
    riot = clients["riot"].fetch(LinkedAccount("0xa", "riot", "P"), TimeWindow(0, NOW))
    assert riot.records == []  # P is not a participant of the one match served; the other ids 404
    faceit = clients["faceit"].fetch(LinkedAccount("0xa", "faceit", "76561198002596349"), TimeWindow(0, 1_800_000_000))
    assert len(faceit.records) == 20 and all(r["kills"] is None for r in faceit.records)  # no stats served
