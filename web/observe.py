"""What the web process shows its operator (`ops`): each request gets an id — the
trusted proxy's `X-Request-ID` behind PROXY_HOPS, else a new one — answered in its
`X-Request-ID` header and bound for its log lines, error reports and the jobs it
enqueues; each answer is counted by route, method and status, with its time.

`GET /metrics`: Prometheus's text format, to a bearer of METRICS_TOKEN only (401
for anyone else; 404 when no token is set: not served at all). Every gunicorn
worker's numbers merged, and the queues read from Redis at that moment
(`ops.metrics`). The same is served on METRICS_PORT by gunicorn's master
(`gunicorn.conf.py`), for a scraper on a private network.
"""

from __future__ import annotations

import hmac
import time

from flask import Blueprint, Flask, Response, abort, current_app, g, request

from core.platform.config import Settings
from jobs import queues
from ops import context, metrics

bp = Blueprint("metrics", __name__)
REGISTRY = "ledgersync.metrics"  # the app's extension: what a scrape answers


def install(app: Flask, settings: Settings) -> None:
    """First of the app's hooks, so that every answer is measured."""
    app.before_request(_begin)
    app.after_request(_answered)
    app.teardown_request(_end)
    app.extensions[REGISTRY] = registry(settings)
    app.register_blueprint(bp)


def registry(settings: Settings):
    """The web's scrape: its processes' numbers, the queues, the sending pace."""
    return metrics.scrape_registry(metrics.QueueCollector(queues.quick(settings), queues.QUEUES),
                                   metrics.SettingsCollector(settings))


def _begin() -> None:
    settings: Settings = current_app.config["LEDGERSYNC"]
    given = request.headers.get("X-Request-ID") if settings.proxy_hops else None
    g.observed = (time.perf_counter(), context.bind(request_id=context.request_id(given),
                                                    received=time.time()))


def _answered(response: Response) -> Response:
    started, _ = g.get("observed", (None, None))
    if started is not None:
        route = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.http_answered(route, request.method, response.status_code,
                              time.perf_counter() - started)
        response.headers["X-Request-ID"] = context.current().get("request_id", "")
    return response


def _end(_exc) -> None:
    _, bound = g.pop("observed", (None, None))
    if bound:
        context.unbind(bound)


@bp.get("/metrics")
def scrape():
    token = current_app.config["LEDGERSYNC"].metrics_token
    if not token:
        abort(404)
    given = request.headers.get("Authorization", "").encode()
    if not hmac.compare_digest(given, f"Bearer {token}".encode()):
        return Response("A bearer token is needed.\n", 401, mimetype="text/plain",
                        headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    body, content_type = metrics.exposition(current_app.extensions[REGISTRY],
                                            request.headers.get("Accept"))
    return Response(body, content_type=content_type)
