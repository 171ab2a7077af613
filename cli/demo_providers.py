"""What the demo's evidence comes from, generated here (never the shared fixtures): a local HTTP server
answering as Strava's API v3 for the accounts the demo links (the collector's path), and Garmin TCX
files a participant uploads (the uploads API's path)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


def strava_activity(activity_id: int, start_ts: int, km: float) -> dict[str, Any]:
    """A SummaryActivity as Strava's /athlete/activities lists it (the fields the collector reads)."""
    seconds = round(km * 330)  # 5:30 min/km
    return {"id": activity_id, "name": f"Run {km:g} km", "type": "Run", "sport_type": "Run",
            "start_date": _iso(start_ts), "distance": km * 1000.0, "moving_time": seconds, "elapsed_time": seconds,
            "total_elevation_gain": 25.0, "average_speed": km * 1000.0 / seconds, "average_heartrate": 151.0,
            "max_heartrate": 174.0, "trainer": False, "manual": False}


@contextmanager
def strava_server(activities_by_token: dict[str, list[dict[str, Any]]]) -> Iterator[str]:
    """Strava on 127.0.0.1 (a free port); yields its base URL. The access token says whose activities
    to list, as on Strava; activities outside ?after=&before= are left out; page 2 is empty."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            token = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if url.path != "/api/v3/athlete/activities" or token not in activities_by_token:
                self._answer(404 if token in activities_by_token else 401, {"message": "not found"})
                return
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            after, before = int(query.get("after", 0)), int(query.get("before", 2**62))
            page = int(query.get("page", 1))
            listed = [a for a in activities_by_token[token]
                      if after <= datetime.fromisoformat(a["start_date"].replace("Z", "+00:00")).timestamp() <= before]
            self._answer(200, listed if page == 1 else [])

        def _answer(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="demo-strava", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def garmin_tcx(path: Path, runs: list[tuple[int, float]]) -> Path:
    """A Garmin TCX export with one running activity per (start time, km), as Garmin Connect writes it."""
    activities = []
    for start_ts, km in runs:
        seconds = round(km * 330)
        activities.append(f"""    <Activity Sport="Running">
      <Id>{_iso(start_ts)}</Id>
      <Lap StartTime="{_iso(start_ts)}">
        <TotalTimeSeconds>{seconds}</TotalTimeSeconds>
        <DistanceMeters>{km * 1000:.1f}</DistanceMeters>
        <Calories>{round(km * 62)}</Calories>
        <AverageHeartRateBpm><Value>149</Value></AverageHeartRateBpm>
        <MaximumHeartRateBpm><Value>171</Value></MaximumHeartRateBpm>
        <Intensity>Active</Intensity>
        <TriggerMethod>Manual</TriggerMethod>
      </Lap>
    </Activity>""")
    path.write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<TrainingCenterDatabase xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2">
  <Activities>
{chr(10).join(activities)}
  </Activities>
</TrainingCenterDatabase>
""")
    return path


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
