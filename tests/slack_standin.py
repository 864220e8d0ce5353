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

from tests.standin import LocalServer

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
        # OAuth: what `oauth.v2.access` answers for each code (`workspace(…)`), and for
        # each refresh token; the bearer token of every call, beside `calls`.
        self.codes: dict[str, dict] = {}
        self.refreshes: dict[str, dict] = {}
        self.bearers: list[tuple[str, str | None]] = []
        self.teams: dict[str, str] = {}  # token → team, for auth.test
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
            bearer = request.headers.get("Authorization", "").removeprefix("Bearer ") or \
                params.get("token")
            self.bearers.append((name, bearer))
            if name.startswith("respond:"):
                self.arrived.setdefault(name, time.perf_counter())
                if name in self._waiting:
                    self._waiting[name].set()
        return Response(json.dumps(self._answer(name, params, bearer)),
                        content_type="application/json")(environ, start_response)

    def _answer(self, name: str, params: dict, bearer: str | None = None) -> dict:
        if name in self.fail:
            return {"ok": False, "error": self.fail[name]}
        if name == "auth.test":
            return {"ok": True, "team_id": self.teams.get(bearer or "", TEAM), "user_id": BOT,
                    "bot_id": "B1"}
        if name == "oauth.v2.access":
            return self._oauth(params)
        if name == "chat.postMessage":
            return self._post(params.get("channel") or "")
        if name == "conversations.list":
            return self._list(params)
        if name.startswith("views."):
            return {"ok": True, "view": {"id": "V1"}}
        return {"ok": True}

    def workspace(self, code: str, team: str, *, token: str, refresh: str | None = None,
                  expires_in: int = 43200, name: str = "", installer: str = "UINSTALLER") -> None:
        """`oauth.v2.access` with this code installs the app in `team` with `token`
        (a rotating one when `refresh` is given)."""
        answer = {"ok": True, "app_id": "A1", "token_type": "bot", "access_token": token,
                  "scope": "commands,chat:write", "bot_user_id": "UBOT" + team[-3:],
                  "team": {"id": team, "name": name or f"Workspace {team}"},
                  "enterprise": None, "is_enterprise_install": False,
                  "authed_user": {"id": installer}}
        if refresh:
            answer.update(refresh_token=refresh, expires_in=expires_in)
        self.codes[code] = answer
        self.teams[token] = team

    def rotation(self, refresh: str, *, token: str, next_refresh: str, team: str,
                 expires_in: int = 43200) -> None:
        """`oauth.v2.access` with grant_type=refresh_token and `refresh` gives `token`."""
        self.refreshes[refresh] = {"ok": True, "token_type": "bot", "access_token": token,
                                   "refresh_token": next_refresh, "expires_in": expires_in,
                                   "team": {"id": team}}
        self.teams[token] = team

    def _oauth(self, params: dict) -> dict:
        if params.get("grant_type") == "refresh_token":
            return self.refreshes.get(params.get("refresh_token"),
                                      {"ok": False, "error": "invalid_refresh_token"})
        return self.codes.get(params.get("code"), {"ok": False, "error": "invalid_code"})

    def forget(self) -> None:
        """Start the record afresh (what a test's set-up caused is not its subject)."""
        with self._lock:
            self.calls.clear()
            self.bearers.clear()

    def tokens_used(self, name: str) -> list[str | None]:
        """The bearer token of each call to `name`, in order."""
        with self._lock:
            return [token for n, token in self.bearers if n == name]

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
