"""`/ledgersync funnel [30d]` (a firm's funnel: who stalled where, with the buttons that
move them) and `/ledgersync support funnel` (LedgerSync support, across firms)."""

from __future__ import annotations

from core.firms.access import Actor
from core.platform.errors import Refused


def funnel(command, actor: Actor, meta: dict) -> dict:
    raise Refused("The funnel is not ready yet")


def support(command, actor: Actor, meta: dict) -> dict:
    raise Refused("The support funnel is not ready yet")
