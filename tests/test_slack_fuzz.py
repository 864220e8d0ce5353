"""Property-based fuzzing of `/ledgersync` text: whatever is typed, the command is
acknowledged, answered (never a 500), and another firm's data never changes."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.records import Client, Invite, Message, Staff
from tests.slack_requests import command

WORDS = st.sampled_from(["invite", "resend", "remind", "revoke", "status", "clients", "pending",
                         "notify", "doctor", "help", "client add", "import", "sms", "email",
                         "reconnect", "force", "olga", "Olga Client", "firm:\"Other LLP\"",
                         "firm:Smith", "<#C1|x>", "<!channel>", "'", '"', "2125550199",
                         "olga@client.example", "😀", "\u202e", "\x00", "staff", "add",
                         "remove", "role", "admin", "<@UOLGA|olga>", "olga@other.example"])
TEXT = st.one_of(
    st.lists(WORDS, max_size=6).map(" ".join),
    st.text(max_size=300),
    st.text(min_size=4000, max_size=5000),
)


def other_firm_state(firm):
    return (Client.select().where(Client.firm == firm).count(),
            Invite.select().where(Invite.firm == firm).count(),
            Message.select().where(Message.firm == firm).count(),
            [(s.email, s.role) for s in Staff.select().where(Staff.firm == firm)])


@pytest.mark.slow
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=TEXT)
def test_any_command_text_is_answered_and_harmless(web, slack, smith, other, text):
    before = other_firm_state(other)
    answered = len(slack.of("respond:cmd")) + len(slack.of("views.open"))
    reply = command(web, slack, text)
    assert reply.status_code == 200
    deadline_calls = answered + 1
    end = time.monotonic() + 10
    while len(slack.of("respond:cmd")) + len(slack.of("views.open")) < deadline_calls:
        assert time.monotonic() < end, f"no answer to {text!r}"
        time.sleep(0.01)
    assert "Something went wrong" not in str(slack.calls[-1])
    assert other_firm_state(other) == before
