"""A local stand-in for Twilio's REST API (Messages), speaking the wire format the
twilio SDK uses, so tests go through the real SDK and HTTP:

- `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` (form: To, From or
  MessagingServiceSid, Body, StatusCallback) → 201 and the message resource;
- `GET  …/Messages.json?To=…&From=…&DateSent>=…&PageSize=…&Page=…` → a page;
- `GET  …/Messages/{Sid}.json` → the resource, or 404 (20404).

HTTP Basic auth must be the account sid and auth token (else 401, 20003). Twilio's
test numbers behave as with test credentials: To +15005550001 → 21211 (not a valid
number), …0004 → 21610 (opted out), …0009 → 21614 (not a mobile); From …0001 →
21212, …0007 → 21606, …0008 → 21611. `fail_next()` makes the next requests fail
(429, 500…). Every accepted text is recorded with monotonic and wall times, taken
when its request arrived. `latency` (seconds) makes every answer come that much
later, as Twilio's own API does (~20 ms and more), for benchmarks.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlencode

from twilio.request_validator import RequestValidator
from werkzeug.wrappers import Request, Response

from core.messaging.sms_encoding import measure
from tests.standin import LocalServer

API = "/2010-04-01"
ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "test-auth-token"
FROM_NUMBER = "+15005550006"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
TO_ERRORS = {
    "+15005550001": (21211, "The 'To' number {to} is not a valid phone number."),
    "+15005550002": (21612, "The 'To' phone number: {to}, is not currently reachable "
                            "using the 'From' phone number via SMS."),
    "+15005550003": (21408, "Permission to send an SMS has not been enabled for the region "
                            "indicated by the 'To' number: {to}."),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "'To' number {to} is not a valid mobile number"),
}
FROM_ERRORS = {
    "+15005550001": (21212, "The 'From' number {frm} is not a valid phone number, shortcode, "
                            "or alphanumeric sender ID."),
    "+15005550007": (21606, "The 'From' phone number provided is not a valid message-capable "
                            "Twilio phone number for this destination/account."),
    "+15005550008": (21611, "This 'From' number has exceeded the maximum number of queued "
                            "messages"),
}
DEFAULT_FAILURE_CODES = {429: 20429, 500: 20500, 503: 20503}
MESSAGES = re.compile(rf"^{API}/Accounts/(AC\w+)/Messages(?:/(SM\w+))?\.json$")


class KeepAliveHandler(BaseHTTPRequestHandler):
    """Serves the stand-in's WSGI app over HTTP/1.1 with connections kept open between
    requests, as Twilio's API does (werkzeug's development server closes each one, so
    every text would cost a new TCP connection there and not on Twilio). Each request's
    body is read in full (Content-Length), so the next request line is where it should be."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms ACK wait

    def do_GET(self):
        self._serve()

    do_POST = do_GET

    def _serve(self):
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        environ = {
            "REQUEST_METHOD": self.command, "PATH_INFO": unquote(path), "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(length),
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": str(self.server.server_port),
            "SERVER_PROTOCOL": self.request_version, "REMOTE_ADDR": self.client_address[0],
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
            "wsgi.input": io.BytesIO(self.rfile.read(length) if length else b""),
            "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
            **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in self.headers.items()},
        }
        answer: list = []
        body = b"".join(self.server.app(environ, lambda status, headers, *_: answer.extend(
            [status, headers])))
        self.send_response(int(answer[0].split()[0]))
        for name, value in answer[1]:
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet, as the tests set werkzeug's log
        pass


class KeepAliveServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, app):
        super().__init__(("127.0.0.1", 0), KeepAliveHandler)
        self.app = app


@dataclass
class Accepted:
    """One text the stand-in accepted (`resource` is the JSON Twilio keeps for it)."""

    sid: str
    form: dict[str, str]
    resource: dict
    monotonic: float
    wall: float
    created: datetime = field(repr=False)

    @property
    def to(self) -> str:
        return self.resource["to"]

    @property
    def body(self) -> str:
        return self.resource["body"]

    @property
    def segments(self) -> int:
        return int(self.resource["num_segments"])


class TwilioStandIn(LocalServer):
    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN,
                 latency: float = 0.0):
        self.account_sid, self.auth_token = account_sid, auth_token
        self.latency = latency
        self.accepted: list[Accepted] = []
        self.requests: list[tuple[str, str, dict]] = []  # (method, path, form or query)
        self._failures: list[tuple[int, int, str]] = []
        self._lock = threading.Lock()
        super().__init__()
        self.server.server_close()  # werkzeug's, which closes every connection: ours instead
        self.server = KeepAliveServer(self._app)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)

    # --- what a test controls -------------------------------------------------------

    def fail_next(self, count: int = 1, *, status: int = 500, code: int | None = None,
                  message: str | None = None) -> None:
        """The next `count` requests (any endpoint) answer `status` with Twilio's error
        JSON (`code` defaults to 20429 for 429, 20500 for 500)."""
        code = code or DEFAULT_FAILURE_CODES.get(status, status)
        text = message or {429: "Too Many Requests", 503: "Service Unavailable"}.get(
            status, "Internal Server Error" if status >= 500 else "Bad Request")
        with self._lock:
            self._failures.extend([(status, code, text)] * count)

    def set_status(self, sid: str, status: str, error_code: int | None = None) -> dict:
        """Move a text on (sent, delivered, undelivered…), as the carrier would."""
        with self._lock:
            resource = self._find(sid).resource
            now = _rfc2822(datetime.now(UTC))
            resource.update(status=status, date_updated=now)
            if status in {"sent", "delivered", "undelivered"} and not resource["date_sent"]:
                resource["date_sent"] = now
            if error_code:
                resource["error_code"] = error_code
            return dict(resource)

    # --- what a test reads ------------------------------------------------------------

    def sent(self, to: str | None = None) -> list[Accepted]:
        with self._lock:
            return [a for a in self.accepted if to is None or a.to == to]

    def wait_for(self, count: int = 1, timeout: float = 10.0, to: str | None = None
                 ) -> list[Accepted]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.sent(to)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"Twilio got {len(self.sent(to))} texts, expected {count}")

    def busiest(self, window: float = 1.0, segments: bool = False) -> int:
        """The most texts (or segments) accepted within any `window` seconds."""
        with self._lock:
            marks = sorted((a.monotonic, a.segments if segments else 1) for a in self.accepted)
        best, start, total = 0, 0, 0
        for at, weight in marks:
            total += weight
            while marks[start][0] <= at - window:
                total -= marks[start][1]
                start += 1
            best = max(best, total)
        return best

    def callbacks_for(self, sid: str, *statuses: str, error_code: int | None = None
                      ) -> list[dict[str, str]]:
        """The status-callback forms Twilio would post for `sid`, one per status
        (default: sent, then delivered)."""
        with self._lock:
            resource = dict(self._find(sid).resource)
        forms = []
        for status in statuses or ("sent", "delivered"):
            form = {"AccountSid": self.account_sid, "ApiVersion": "2010-04-01",
                    "MessageSid": sid, "SmsSid": sid, "MessageStatus": status,
                    "SmsStatus": status, "To": resource["to"], "From": resource["from"] or ""}
            if resource["messaging_service_sid"]:
                form["MessagingServiceSid"] = resource["messaging_service_sid"]
            if error_code and status in {"failed", "undelivered"}:
                form["ErrorCode"] = str(error_code)
            forms.append(form)
        return forms

    def signature(self, url: str, form: dict[str, str]) -> str:
        """The X-Twilio-Signature Twilio would send with `form` posted to `url`."""
        return RequestValidator(self.auth_token).compute_signature(url, form)

    # --- the HTTP side ------------------------------------------------------------------

    def _app(self, environ, start_response):
        request = Request(environ)
        arrived = time.monotonic(), time.time()
        status, payload = self._answer(request, arrived)
        if self.latency:
            time.sleep(max(0.0, arrived[0] + self.latency - time.monotonic()))
        response = Response(json.dumps(payload), status=status, content_type="application/json")
        return response(environ, start_response)

    def _answer(self, request: Request, arrived: tuple[float, float]) -> tuple[int, dict]:
        form = request.form.to_dict() if request.method == "POST" else request.args.to_dict()
        with self._lock:
            self.requests.append((request.method, request.path, form))
            failure = self._failures.pop(0) if self._failures else None
        match = MESSAGES.match(request.path)
        if not self._authorized(request, match):
            return _error(401, 20003, "Authenticate")
        if failure:
            return _error(*failure)
        if match is None:
            return _error(404, 20404, f"The requested resource {request.path} was not found")
        if match.group(2):
            return self._fetch(request.path, match.group(2))
        if request.method == "POST":
            return self._create(form, arrived)
        return 200, self._page(request.path, form)

    def _authorized(self, request: Request, match) -> bool:
        auth = request.authorization
        return bool(auth and auth.username == self.account_sid
                    and auth.password == self.auth_token
                    and (match is None or match.group(1) == self.account_sid))

    def _fetch(self, path: str, sid: str) -> tuple[int, dict]:
        with self._lock:
            found = [a for a in self.accepted if a.sid == sid]
        if not found:
            return _error(404, 20404, f"The requested resource {path} was not found")
        return 200, dict(found[0].resource)

    def _create(self, form: dict[str, str], arrived: tuple[float, float]) -> tuple[int, dict]:
        problem = _refusal(form)
        if problem:
            return _error(400, *problem)
        sid = "SM" + secrets.token_hex(16)
        now = datetime.now(UTC)
        resource = self._resource(sid, form, now)
        with self._lock:
            self.accepted.append(Accepted(sid, form, resource, *arrived, now))
        return 201, dict(resource)

    def _resource(self, sid: str, form: dict[str, str], now: datetime) -> dict:
        base = f"{API}/Accounts/{self.account_sid}/Messages/{sid}"
        service = form.get("MessagingServiceSid")
        return {
            "account_sid": self.account_sid, "api_version": "2010-04-01",
            "body": form["Body"], "date_created": _rfc2822(now), "date_sent": None,
            "date_updated": _rfc2822(now), "direction": "outbound-api",
            "error_code": None, "error_message": None, "from": form.get("From"),
            "messaging_service_sid": service, "num_media": "0",
            "num_segments": str(measure(form["Body"]).count), "price": None,
            "price_unit": "USD", "sid": sid,
            "status": "accepted" if service and not form.get("From") else "queued",
            "subresource_uris": {"media": f"{base}/Media.json"},
            "to": form["To"], "uri": f"{base}.json",
        }

    def _page(self, path: str, query: dict[str, str]) -> dict:
        size = int(query.get("PageSize") or 50)
        number = int(query.get("Page") or 0)
        with self._lock:
            rows = [a for a in reversed(self.accepted) if _listed(a, query)]
        chunk = rows[number * size:(number + 1) * size]

        def uri(page: int) -> str:
            return f"{path}?{urlencode({**query, 'PageSize': size, 'Page': page})}"

        return {
            "messages": [dict(a.resource) for a in chunk],
            "end": number * size + max(len(chunk) - 1, 0), "start": number * size,
            "page": number, "page_size": size, "uri": uri(number), "first_page_uri": uri(0),
            "next_page_uri": uri(number + 1) if len(rows) > (number + 1) * size else None,
            "previous_page_uri": uri(number - 1) if number > 0 else None,
        }

    def _find(self, sid: str) -> Accepted:
        for accepted in self.accepted:
            if accepted.sid == sid:
                return accepted
        raise KeyError(sid)


def _refusal(form: dict[str, str]) -> tuple[int, str] | None:
    to, frm = form.get("To", ""), form.get("From", "")
    if not to:
        return 21604, "A 'To' phone number is required."
    if not frm and not form.get("MessagingServiceSid"):
        return 21603, "A 'From' phone number is required."
    if not form.get("Body"):
        return 21602, "Message body is required."
    if len(form["Body"]) > 1600:
        return 21617, "The concatenated message body exceeds the 1600 character limit."
    if to in TO_ERRORS or not E164.match(to):
        code, text = TO_ERRORS.get(to, TO_ERRORS["+15005550001"])
        return code, text.format(to=to)
    if frm in FROM_ERRORS:
        code, text = FROM_ERRORS[frm]
        return code, text.format(frm=frm)
    return None


def _listed(accepted: Accepted, query: dict[str, str]) -> bool:
    resource = accepted.resource
    if query.get("To") and resource["to"] != query["To"]:
        return False
    if query.get("From") and resource["from"] != query["From"]:
        return False
    return _sent_within(resource["date_sent"], query)


def _sent_within(date_sent: str | None, query: dict[str, str]) -> bool:
    """Twilio's DateSent filters: a text not sent yet (still queued) has no date
    sent and matches none of them."""
    bounds = {k: v for k, v in query.items() if k in {"DateSent", "DateSent>", "DateSent<"}}
    if not bounds:
        return True
    if not date_sent:
        return False
    sent = datetime.strptime(date_sent, "%a, %d %b %Y %H:%M:%S %z")
    for key, value in bounds.items():
        at = _parse_filter(value)
        day_only = len(value) == 10
        subject = sent.date() if day_only else sent
        at = at.date() if day_only else at
        if (key == "DateSent" and subject != at) or (key == "DateSent>" and subject < at) \
                or (key == "DateSent<" and subject > at):
            return False
    return True


def _parse_filter(value: str) -> datetime:
    if len(value) == 10:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _rfc2822(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=False)


def _error(status: int, code: int, message: str) -> tuple[int, dict]:
    return status, {"code": code, "message": message,
                    "more_info": f"https://www.twilio.com/docs/errors/{code}",
                    "status": status}
