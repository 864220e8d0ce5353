"""A local stand-in for Slack's Web API and response URLs, speaking the real wire
format (as bolt-python's own tests do): it answers `auth.test`,
`chat.postMessage`, `views.open`, `conversations.list` … and records every call,
so a test asserts what was posted."""

from __future__ import annotations

import itertools
import json
import threading
import time
from urllib.parse import parse_qs

from werkzeug.wrappers import Request, Response

from .standin import LocalServer

TEAM, BOT = "T0FIRM", "UBOT"


class SlackStandIn(LocalServer):
    def __init__(self):
        self.calls: list[tuple[str, dict]] = []
        self.fail: dict[str, str] = {}
        # Posting in one of these channels is refused with that error (`not_in_channel`…).
        self.refuse: dict[str, str] = {}
        # What `conversations.list` lists ({"id": …, "name": …}), `page_size` at a time.
        self.channels: list[dict] = []
        self.page_size = 100
        # A response URL (by key) answers these HTTP statuses first, one per post, then
        # takes posts again; the posts it turned away are kept apart (`turned_away`).
        self.unavailable: dict[str, list[int]] = {}
        self.turned_away: list[tuple[str, int]] = []
        # When each post to a response URL arrived (`time.perf_counter()`), for benchmarks.
        self.arrived: dict[str, float] = {}
        self._lock = threading.Lock()
        self._waiting: dict[str, threading.Event] = {}
        self._seq = itertools.count(1)
        super().__init__()

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def response_url(self, key: str = "cmd") -> str:
        return f"{self.url}/respond/{key}"

    def _app(self, environ, start_response):
        request = Request(environ)
        body = request.get_data(as_text=True)
        if request.mimetype == "application/json":
            params = json.loads(body or "{}")
        else:
            params = {k: v[0] for k, v in parse_qs(body).items()}
        params.update({k: v for k, v in request.args.items() if k not in params})  # GETs
        name = request.path.removeprefix("/api/") if request.path.startswith("/api/") else \
            "respond:" + request.path.removeprefix("/respond/")
        with self._lock:
            statuses = self.unavailable.get(name.removeprefix("respond:"), [])
            if name.startswith("respond:") and statuses:
                status = statuses.pop(0)
                self.turned_away.append((name, status))
                return Response("unavailable", status=status, headers={"Retry-After": "0"})(
                    environ, start_response)
            self.calls.append((name, params))
            if name.startswith("respond:"):
                self.arrived.setdefault(name, time.perf_counter())
                if name in self._waiting:
                    self._waiting[name].set()
        return Response(json.dumps(self._answer(name, params)),
                        content_type="application/json")(environ, start_response)

    def _answer(self, name: str, params: dict) -> dict:
        if name in self.fail:
            return {"ok": False, "error": self.fail[name]}
        if name == "auth.test":
            return {"ok": True, "team_id": TEAM, "user_id": BOT, "bot_id": "B1"}
        if name == "chat.postMessage":
            return self._post(params.get("channel") or "")
        if name == "conversations.list":
            return self._list(params)
        if name.startswith("views."):
            return {"ok": True, "view": {"id": "V1"}}
        return {"ok": True}

    def _post(self, channel: str) -> dict:
        if channel in self.refuse:
            return {"ok": False, "error": self.refuse[channel]}
        if channel[:1] in ("U", "W"):  # a user: the app's DM with them, a D… channel
            channel = "D" + channel[1:]
        # Unique even while a test holds the clock still.
        return {"ok": True, "channel": channel, "ts": f"{time.time():.0f}.{next(self._seq):06d}"}

    def _list(self, params: dict) -> dict:
        start = int(params.get("cursor") or 0)
        end = start + min(int(params.get("limit") or 100), self.page_size)
        more = str(end) if end < len(self.channels) else ""
        return {"ok": True, "channels": self.channels[start:end],
                "response_metadata": {"next_cursor": more}}

    def wait_arrival(self, key: str, timeout: float) -> float | None:
        """When the first post to response URL `key` arrived (perf_counter), waiting
        up to `timeout` seconds for it; None if it didn't."""
        name = f"respond:{key}"
        with self._lock:
            if name in self.arrived:
                return self.arrived[name]
            event = self._waiting.setdefault(name, threading.Event())
        event.wait(timeout)
        with self._lock:
            self._waiting.pop(name, None)
            return self.arrived.get(name)

    def dms(self, user: str) -> list[dict]:
        """What was posted to one person (by their user id)."""
        return [p for p in self.of("chat.postMessage") if p.get("channel") == user]

    def of(self, name: str) -> list[dict]:
        with self._lock:
            return [p for n, p in self.calls if n == name]

    def wait_for(self, name: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.of(name)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"Slack got {len(self.of(name))} {name}, expected {count}: "
                             f"{[n for n, _ in self.calls]}")
