"""Texts through Twilio's REST API (the `sms` channel of the outbound port).

`TWILIO_FROM_NUMBER` or `TWILIO_MESSAGING_SERVICE_SID` is the sender; Twilio posts
delivery updates to `PUBLIC_BASE_URL/sms/status`. `TWILIO_API_URL` points the SDK
at another host (a local stand-in) in place of https://api.twilio.com.

Never logged: the auth token, message bodies.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from datetime import timedelta
from urllib.parse import urlencode

import urllib3
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.rest import Client

from core.messaging import outbound
from core.messaging.outbound import SendResult
from core.platform import clock
from core.platform.config import Settings, settings
from core.records import Message, Status

from . import errors

log = logging.getLogger(__name__)
TIMEOUT = 15.0  # seconds, for each request to Twilio
BUSY_CODES = {20429, 21611}  # too many requests at once; our sender's queue is full
BUSY = "Twilio is busy; trying again"
CREDENTIALS_CODES = {20003}
# Any Twilio API host: api.twilio.com, or api.<edge>.<region>.twilio.com when
# TWILIO_EDGE / TWILIO_REGION are set in the environment.
_TWILIO_HOST = re.compile(r"^https://api(\.[a-z0-9-]+)*\.twilio\.com(?=/|$)")
_STATUSES = {Status.SENDING, Status.SENT, Status.DELIVERED, Status.FAILED, Status.UNDELIVERED}


class PooledHttpClient(HttpClient):
    """The SDK's HTTP port over one urllib3 pool (connections kept alive, a timeout,
    no retries: a text is sent at most once), sending to `api_url` when set. The
    SDK's own client goes through requests, which cost about 0.6 ms of CPU a text
    more (bench/jobs.py) — a third of what a text costs us beyond the job itself."""

    def __init__(self, api_url: str = "", timeout: float = TIMEOUT):
        super().__init__(logging.getLogger("twilio.http_client"), is_async=False,
                         timeout=timeout)
        self.api_url = api_url.rstrip("/")
        self.pool = urllib3.PoolManager(maxsize=4, retries=urllib3.Retry(0, read=False),
                                        timeout=urllib3.Timeout(connect=timeout, read=timeout))

    def request(self, method, uri, params=None, data=None, headers=None, auth=None,
                timeout=None, allow_redirects=False):
        if self.api_url:
            uri = _TWILIO_HOST.sub(lambda _: self.api_url, uri, count=1)
        if params:
            uri = f"{uri}?{urlencode(params, doseq=True)}"
        headers = dict(headers or {})
        if auth:
            headers.update(urllib3.make_headers(basic_auth=f"{auth[0]}:{auth[1]}"))
        json_body = "json" in headers.get("Content-Type", "")
        body = (json.dumps(data) if json_body else urlencode(data, doseq=True)) if data else None
        try:
            answer = self.pool.request(method.upper(), uri, body=body, headers=headers,
                                       redirect=allow_redirects, timeout=timeout or self.timeout)
        except urllib3.exceptions.HTTPError as problem:  # as OSError, which callers handle
            raise ConnectionError(type(problem).__name__) from problem
        return Response(answer.status, answer.data.decode("utf-8"), answer.headers)


class TwilioSender:
    def __init__(self):
        self._local = threading.local()

    def client(self) -> Client:
        """One SDK client (and its connections, kept alive) per sender and thread — a
        worker sends a bulk run's texts from several threads — rebuilt only when the
        credentials or API URL change."""
        config = settings()
        key = (config.twilio_account_sid, config.twilio_auth_token, config.twilio_api_url)
        local = self._local
        if getattr(local, "client", None) is None or key != local.built_for:
            local.client = Client(config.twilio_account_sid, config.twilio_auth_token,
                                  http_client=PooledHttpClient(config.twilio_api_url))
            local.built_for = key
        return local.client

    def warm(self) -> None:
        """Build this thread's client and load the SDK's message API now, before a slot
        of the pace is waited for (the first use costs tens of milliseconds, which would
        land the text late in its slot)."""
        self.client().messages  # noqa: B018 - the SDK loads its API modules on first access

    def send(self, message: Message) -> SendResult:
        try:
            sent = self.client().messages.create(**_create_params(message, settings()))
        except (TwilioRestException, TwilioServiceException) as problem:
            return _refused(message, problem)
        except (TwilioException, OSError) as problem:  # connection errors are OSErrors
            log.warning("message %s: Twilio unreachable (%s)", message.id,
                        type(problem).__name__)
            return SendResult(Status.PENDING, "twilio", retry=True,
                              error_message=f"Twilio unreachable ({type(problem).__name__})")
        log.info("message %s: Twilio took it as %s (%s)", message.id, sent.sid, sent.status)
        return _accepted(sent)

    def find_sent(self, message: Message) -> SendResult | None:
        """After a crash mid-send: the text Twilio took for this message, if any.

        Matched on recipient, body and creation time (not Twilio's `DateSent`
        filter: a text still waiting in Twilio's queue has no date sent yet)."""
        since = clock.as_utc(message.updated_at) - timedelta(minutes=1)
        try:
            candidates = self.client().messages.list(to=message.to_addr, limit=20)
        except (TwilioException, TwilioServiceException, OSError) as problem:
            log.warning("message %s: could not ask Twilio what it took (%s)", message.id,
                        type(problem).__name__)
            return None
        text = outbound.text_of(message)
        for candidate in candidates:
            created = candidate.date_created
            if text and candidate.body == text[0] and (created is None or created >= since):
                return _accepted(candidate)
        return None


def _create_params(message: Message, config: Settings) -> dict:
    params = {"to": message.to_addr, "body": outbound.text_of(message)[0],
              "status_callback": f"{config.public_base_url}/sms/status"}
    if config.twilio_messaging_service_sid:
        params["messaging_service_sid"] = config.twilio_messaging_service_sid
    else:
        params["from_"] = config.twilio_from_number
    return params


def _accepted(sent) -> SendResult:
    status = sent.status if sent.status in _STATUSES else "queued"  # queued/accepted/…
    if status in {"failed", "undelivered"}:
        return SendResult(status, "twilio", provider_id=sent.sid,
                          error_code=str(sent.error_code or "") or None,
                          error_message=errors.reason(sent.error_code),
                          address_problem=errors.address_problem(sent.error_code))
    return SendResult(status, "twilio", provider_id=sent.sid)


def _refused(message: Message, problem) -> SendResult:
    status, code = int(problem.status or 0), problem.code
    number = code if isinstance(code, int) and code != status else None
    error_code = str(number or status)
    log.warning("message %s: Twilio answered %s (error %s)", message.id, status, number)
    if status >= 500 or status == 429 or number in BUSY_CODES:
        return SendResult(Status.PENDING, "twilio", retry=True, error_code=error_code,
                          error_message=BUSY)
    if status == 401 or number in CREDENTIALS_CODES:
        # Our configuration, not the client's number: keep it and try again later.
        log.error("Twilio refused our credentials; check TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN")
        return SendResult(Status.PENDING, "twilio", retry=True, error_code=error_code,
                          error_message=errors.reason(20003))
    return SendResult("failed", "twilio", error_code=error_code,
                      error_message=errors.reason(number) if number else
                      f"Twilio refused the text (HTTP {status})",
                      address_problem=errors.address_problem(number))
