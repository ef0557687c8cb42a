"""A real webhook receiver on 127.0.0.1 for the tests: it records what it gets."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook


@dataclass
class Received:
    headers: dict[str, str]
    body: str


@dataclass
class Receiver:
    """Answers ``status`` (503 while "down"); records every request, in arrival order."""

    url: str = ""
    status: int = 204
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def delivered(self) -> list[Received]:
        """The requests that were answered 2xx (recorded while up)."""
        with self.lock:
            return [r for r in self.requests if r.headers.get("x-answered", "").startswith("2")]

    def verified(self, secret: str) -> list[dict[str, object]]:
        """Every delivered body, each checked with ``standardwebhooks.Webhook.verify``."""
        hook = Webhook(secret)
        return [hook.verify(r.body, r.headers) for r in self.delivered()]


@contextmanager
def receiver(**options: object) -> Iterator[Receiver]:
    state = Receiver(**options)  # type: ignore[arg-type]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length).decode()
            if state.delay:
                threading.Event().wait(state.delay)
            answer = state.status
            headers = {k.lower(): v for k, v in self.headers.items()}
            headers["x-answered"] = str(answer)
            with state.lock:
                state.requests.append(Received(headers=headers, body=body))
            self.send_response(answer)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
