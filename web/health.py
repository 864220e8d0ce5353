"""`GET /healthz`: does the database answer, does Redis answer."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from core.platform import db

bp = Blueprint("health", __name__)


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@bp.get("/healthz")
def healthz():
    settings = current_app.config["LEDGERSYNC"]
    checks = {"database": db.ping(), "redis": redis_answers(settings.redis_url)}
    body = {name: "ok" if ok else "unavailable" for name, ok in checks.items()}
    healthy = all(checks.values())
    body["status"] = "ok" if healthy else "degraded"
    return jsonify(body), 200 if healthy else 503
