"""A known history for the funnel's and the digest's tests, built through core on a
frozen clock, texts through the Twilio stand-in (receipts as Twilio would post them),
emails to the outbox. T0 is Mon 23 Nov 2026, 15:00 UTC; each client's first invite of
the period, what happened, and where they stand:

- Ann Connects: T0, SMS, by Ann; opened, accepted, Chase connected at +3 h → connected, 3 h
- Ben Resent: T0, email, by Ann; expired unopened; a new link by SMS (Bob) at +6 d,
  accepted, Chase connected at +6 d 10 h → connected, 6 d 10 h (from his first invite)
- Cat Opens: T0, SMS, by Ann; opened, never accepted, expired → opened but didn't accept
- Dan Unopened: T0, SMS, by Ann; delivered, the day-3 reminder delivered, expired →
  expired unopened
- Eve Fails: T0, SMS, by Ann; Twilio refused it (not a mobile number) → not delivered
- Fay Stops: T0, SMS, by Bob; delivered, then STOP → opted out
- Gus Accepts: T0, email, by Bob; accepted → accepted, no bank
- Hal Refused: T0, email, by Bob; accepted; Chase refused the login → bank login failed
- Ivy NotMe: T0, SMS, by Bob; opened: "This isn't me" → withdrawn
- Jon Revoked: T0, email, by Bob; revoked by Bob → revoked
- Kim Waiting: T0 + 9 d, email, by Bob; delivered → link still open
- Lee Restores: connected Chase at T0 − 25 d, broke at T0 − 1 d; a reconnect invite by
  SMS at T0 + 1 d (by no one), accepted, restored at +2 h → connected, 2 h
- Mia Bulk: T0, SMS, a bulk run by Ann; accepted and connected at +1 d → connected, 1 d
- Ned Bulk: T0, SMS, the same run; delivered, expired → expired unopened
- Old Timer: invited and connected at T0 − 25 d → not in the period

Counted at NOW (T0 + 10 d) over the last 30 days: 14 invited, 13 delivered, 8 opened,
6 accepted, 4 connected; times to connect 2 h, 3 h, 1 d, 6 d 10 h."""

from __future__ import annotations

from datetime import timedelta

from core.banking import connections
from core.firms import firms
from core.invitations import bulk_plan, bulk_sending, clients, invites, links, reminders
from core.messaging import deliveries, optouts
from core.platform import tokens
from core.records import Client, Invite, Message, Staff
from tests.conftest import T0

NOW = T0 + timedelta(days=10)
HOUR, DAY = 3600, 86400
NOT_MOBILE = "the number is not a mobile number (a landline can't get texts)"
REFUSED = "Chase did not accept that username or password. Check them and try again."


def token(invite: Invite) -> str:
    return tokens.unseal(invite.token_sealed)


def delivered(invite: Invite, kind: str = "invite") -> None:
    """Twilio's receipt: the text reached the phone."""
    message = Message.get(Message.invite == invite, Message.kind == kind)
    assert deliveries.record(message.provider_id, "delivered")


def accepted(invite: Invite) -> None:
    links.opened(token(invite))
    links.accept(token(invite))


class History:
    def __init__(self, clock, firm, twilio):
        self.clock, self.firm, self.twilio = clock, firm, twilio
        self.ann = Staff.get(Staff.email == "ann@smith.example")
        self.bob = firms.add_staff(firm, "bob@smith.example", "correct horse 2",
                                   name="Bob Baker")
        self.people: dict[str, Client] = {}
        self.sent: dict[str, Invite] = {}

    def at(self, delta: timedelta) -> None:
        self.clock.move_to(T0 + delta)

    def client(self, name: str, sms: bool, both: bool = False) -> Client:
        number = f"21255501{len(self.people) + 10:02}"
        person = clients.add(self.firm, name, phone=number if sms or both else None,
                             email=None if sms else f"{name.split()[0].lower()}@example.com")
        self.people[name.split()[0]] = person
        return person

    def invite(self, name: str, sms: bool, by: Staff | None, **how) -> Invite:
        person = self.people.get(name.split()[0]) or self.client(name, sms)
        sent = invites.send(person, "sms" if sms else "email", by=by, **how).invite
        self.sent[name.split()[0]] = sent
        return sent

    def build(self) -> dict[str, Client]:
        self._before_the_period()
        self._day_one()
        self._day_one_later()
        self._the_days_after()
        self.clock.move_to(NOW)
        return self.people

    def _before_the_period(self) -> None:
        self.at(timedelta(days=-25))
        for name in ("Old Timer", "Lee Restores"):
            sent = self.invite(name, True, self.ann)
            delivered(sent)
            accepted(sent)
            assert connections.add(self.people[name.split()[0]], "chase", "user_good",
                                    "pass_good").status == "connected"
        self.at(timedelta(days=-1))
        connections.mark_broken(connections.for_client(self.people["Lee"])[0])

    def _day_one(self) -> None:
        self.at(timedelta(0))
        self.client("Ben Resent", False, both=True)
        for name, sms in (("Ann Connects", True), ("Ben Resent", False), ("Cat Opens", True),
                          ("Dan Unopened", True)):
            self.invite(name, sms, self.ann)
        self.twilio.fail_next(1, status=400, code=21614)
        self.invite("Eve Fails", True, self.ann)
        for name, sms in (("Fay Stops", True), ("Gus Accepts", False), ("Hal Refused", False),
                          ("Ivy NotMe", True), ("Jon Revoked", False)):
            self.invite(name, sms, self.bob)
        for name in ("Mia Bulk", "Ned Bulk"):
            self.client(name, True)
        plan = bulk_plan.prepare(self.firm, "list", names="Mia Bulk\nNed Bulk", by=self.ann)
        assert bulk_sending.start(plan.run.id)
        self.run = plan.run
        for name in ("Mia", "Ned"):
            self.sent[name] = Invite.get(Invite.client == self.people[name])
        for name in ("Ann", "Cat", "Dan", "Fay", "Ivy", "Mia", "Ned"):
            delivered(self.sent[name])

    def _day_one_later(self) -> None:
        self.at(timedelta(hours=1))
        for name in ("Ann", "Gus", "Hal"):
            accepted(self.sent[name])
        links.opened(token(self.sent["Ivy"]))
        assert links.disown(token(self.sent["Ivy"]))
        invites.revoke(self.people["Jon"], by=self.bob)
        self.at(timedelta(hours=2))
        links.opened(token(self.sent["Cat"]))
        refused = connections.add(self.people["Hal"], "chase", "user_good", "pass_bad")
        assert refused.status == "failed"
        self.at(timedelta(hours=3))
        assert connections.add(self.people["Ann"], "chase", "user_good",
                               "pass_good").status == "connected"
        self.at(timedelta(hours=4))
        optouts.opt_out(self.people["Fay"].phone, "keyword", firm=self.firm,
                        client=self.people["Fay"])

    def _the_days_after(self) -> None:
        self.at(timedelta(days=1))
        accepted(self.sent["Mia"])
        assert connections.add(self.people["Mia"], "chase", "user_good",
                               "pass_good").status == "connected"
        lee = self.invite("Lee Restores", True, None, purpose="reconnect")
        delivered(lee)
        self.at(timedelta(days=1, hours=1))
        accepted(lee)
        self.at(timedelta(days=1, hours=2))
        chase = connections.for_client(self.people["Lee"])[0]
        assert connections.restore(self.people["Lee"], chase.id, "user_good",
                                   "pass_good").status == "connected"
        self.at(timedelta(days=3, minutes=1))
        assert reminders.send_automatic(self.sent["Dan"].id).result == "sent"
        delivered(self.sent["Dan"], "auto_reminder")
        self.at(timedelta(days=5, minutes=1))
        for due in list(invites.expiry_due()):
            invites.expire(due.id)
        self.at(timedelta(days=6))
        ben = invites.resend(self.people["Ben"], "sms", by=self.bob).invite
        delivered(ben)
        self.at(timedelta(days=6, hours=1))
        accepted(ben)
        self.at(timedelta(days=6, hours=10))
        assert connections.add(self.people["Ben"], "chase", "user_good",
                               "pass_good").status == "connected"
        self.at(timedelta(days=9))
        self.invite("Kim Waiting", False, self.bob)
