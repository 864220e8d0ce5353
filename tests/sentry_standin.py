"""A local stand-in for Sentry's ingestion endpoint (`POST /api/<project>/envelope/`),
so error reports go through the real sentry-sdk and HTTP: each envelope is kept as
it arrived (`raw`, decompressed) and parsed into its items (`events()`).

DSN: `stand_in.dsn` (http://public@127.0.0.1:<port>/1). The SDK compresses with gzip
(or brotli, when installed); both are read.
"""

from __future__ import annotations

import gzip
import json
import threading

from werkzeug.wrappers import Request, Response

from tests.standin import LocalServer


class SentryStandIn(LocalServer):
    def __init__(self):
        super().__init__()
        self.dsn = f"http://public@127.0.0.1:{self.server.server_port}/1"
        self.raw: list[bytes] = []  # every envelope, decompressed
        self._arrived = threading.Condition()

    def _app(self, environ, start_response):
        request = Request(environ)
        body = _decompressed(request.get_data(), request.headers.get("Content-Encoding"))
        with self._arrived:
            self.raw.append(body)
            self._arrived.notify_all()
        return Response('{"id": "0"}', 200, mimetype="application/json")(environ,
                                                                          start_response)

    def events(self) -> list[dict]:
        """The error events received (items of type `event`)."""
        return [payload for raw in list(self.raw) for kind, payload in _items(raw)
                if kind == "event"]

    def wait_for_events(self, count: int, timeout: float = 10.0) -> list[dict]:
        """For reports sent from another thread or process: wait until they are here."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.events()) >= count, timeout)
        return self.events()

    def everything(self) -> str:
        """Every byte received, as text: what must not carry a secret."""
        return b"\n".join(self.raw).decode("utf-8", errors="replace")


def _decompressed(body: bytes, encoding: str | None) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "br":
        import brotli

        return brotli.decompress(body)
    return body


def _items(raw: bytes):
    """(type, payload) of each item of an envelope: a header line, then for each item
    a header line and its payload (`length` bytes, or up to the next newline)."""
    lines = raw.split(b"\n", 1)
    rest = lines[1] if len(lines) > 1 else b""
    while rest.strip():
        header_line, _, rest = rest.partition(b"\n")
        header = json.loads(header_line)
        length = header.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:length], rest[length:].lstrip(b"\n")
        yield header.get("type"), json.loads(payload) if payload.strip() else None
