"""`ledgersync funnel`: the firm's invite funnel — invited, delivered, opened, accepted,
connected — and why clients stall."""

from __future__ import annotations

import click


@click.command("funnel")
def funnel():
    """The firm's invite funnel: how far clients got, and where they stalled."""
    raise click.ClickException("The funnel is not ready yet")
