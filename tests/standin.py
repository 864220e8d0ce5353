"""What every local stand-in for a provider's HTTP API shares: a real HTTP server
on a free loopback port, in a thread, for a `with` block."""

from __future__ import annotations

import threading

from werkzeug.serving import make_server


class LocalServer:
    def __init__(self):
        self.server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        # A short poll, so leaving the `with` block doesn't wait half a second.
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)

    def _app(self, environ, start_response):
        raise NotImplementedError

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
