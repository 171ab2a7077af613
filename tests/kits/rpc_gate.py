"""An HTTP proxy in front of a JSON-RPC node that can be closed (503 for every call) and opened again,
and can answer slowly (`delay` seconds before forwarding each call)."""

from __future__ import annotations

import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class RpcGate:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.open = True
        self.refused = 0
        self.delay = 0.0
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if not gate.open:
                    gate.refused += 1
                    self.send_response(503)
                    self.end_headers()
                    return
                if gate.delay:
                    time.sleep(gate.delay)
                request = urllib.request.Request(gate.upstream, body, {"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=60) as reply:
                    data = reply.read()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
