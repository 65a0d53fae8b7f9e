"""A STAND-IN for Slack's incoming-webhook endpoint (Slack cannot be reached from here): it answers `ok`
as Slack does and keeps what Alertmanager posted, so a test can read what a channel would show."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .procs import poll_for


class SlackWebhook:
    def __init__(self):
        self.messages: list[dict] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/services/T000/B000/stack-tests"

    def start(self) -> "SlackWebhook":
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with hook._lock:
                    hook.messages.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True, name="slack-webhook").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def titled(self, title: str) -> list[dict]:
        """Messages (oldest first) whose attachment has this title, as the shipped template renders it:
        "[FIRING] ServiceErrorRatioHigh (backend)", "[RESOLVED] ...", "[FIRING] GatewayExportStalled"."""
        with self._lock:
            return [m for m in self.messages if m["attachments"][0]["title"] == title]

    def wait_for_title(self, title: str, timeout: float = 30) -> dict:
        return poll_for(lambda: self.titled(title), 1, timeout, f"Slack messages titled {title!r}", interval=0.2)[0]
