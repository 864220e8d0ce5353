"""What several command groups share: the firm acted for, and a password read safely."""

from __future__ import annotations

import sys

import click

from core.firms import firms


def current_firm(ctx=None):
    ctx = ctx or click.get_current_context()
    name = ctx.find_root().obj.get("firm")
    if name:
        return firms.find(name)
    firm = firms.only()
    if firm is None:
        raise click.UsageError("Which firm? Pass --firm NAME (or set LEDGERSYNC_FIRM)")
    return firm


def password(from_stdin: bool, prompt: str = "Password") -> str:
    """From a hidden prompt, asked twice; or the first line of standard input (as
    `docker login --password-stdin`), never from the command line, which `ps` and
    shell history show."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt(prompt, hide_input=True, confirmation_prompt=True)
