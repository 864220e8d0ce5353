"""The Slack Web API client: `SLACK_API_URL` honoured, retries on rate limits,
server errors and dropped connections."""

from __future__ import annotations

from functools import cache

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from core.config import Settings


def web(config: Settings) -> WebClient:
    return _web(config.slack_bot_token, config.slack_api_url)


@cache
def _web(token: str, base_url: str) -> WebClient:
    base = base_url if base_url.endswith("/") else base_url + "/"
    client = WebClient(token=token, base_url=base, timeout=10)
    client.retry_handlers.extend([RateLimitErrorRetryHandler(max_retry_count=2),
                                  ServerErrorRetryHandler(max_retry_count=2),
                                  ConnectionErrorRetryHandler(max_retry_count=2)])
    return client
