"""Who is asking, and what they may do.

A chat identity (workspace id + user id) resolves to an `Actor`: a firm's staff
member (role admin or staff) linked with their LedgerSync email and password, one
of LedgerSync's own support team (every firm, read-only), or nobody. Every action
is checked here, so no driver can forget the firm or the role.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from core.platform import clock
from core.platform.db import Param, Prepared, database
from core.platform.errors import NotFound, Refused
from core.records import Client, Event, Firm, Staff, SupportStaff, events

from . import firms

READ = {"help", "clients", "status", "pending", "doctor", "staff", "accounts"}
STAFF = READ | {"invite", "resend", "remind", "revoke", "client_add", "import", "reconnect",
                 "reply", "transactions"}
ADMIN = STAFF | {"notify", "roles", "team", "api_tokens", "auto_reconnect", "settings"}
ACTIVE_SUBSCRIPTIONS = {"active", "trialing"}
ACTION_WORDS = {"roles": "change roles", "notify": "choose the notices channel",
                "team": "add or remove staff",
                "settings": "change the firm's settings",
                "client_add": "add clients", "import": "import clients",
                "reconnect": "ask clients to reconnect", "reply": "text clients",
                "transactions": "read clients' transactions",
                "api_tokens": "list or revoke the firm's API tokens",
                "auto_reconnect": "change automatic reconnect invites"}
MAX_FAILURES, FAILURE_WINDOW = 5, timedelta(minutes=15)


@dataclass(frozen=True)
class Actor:
    kind: str  # staff | support | nobody
    firm: Firm | None = None
    staff: Staff | None = None
    support: SupportStaff | None = None

    @property
    def role(self) -> str:
        if self.kind == "staff":
            return self.staff.role
        return self.kind

    @property
    def label(self) -> str:
        if self.staff:
            return f"staff:{self.staff.id}"
        return f"support:{self.support.id}" if self.support else "nobody"

    def may(self, action: str) -> bool:
        allowed = {"admin": ADMIN, "staff": STAFF, "support": READ}.get(self.role, set())
        return action in allowed

    def require(self, action: str) -> None:
        if self.kind == "nobody":
            raise Refused("Connect your LedgerSync account first: /ledgersync connect")
        if not self.may(action):
            who = "LedgerSync support" if self.kind == "support" else f"the {self.role} role"
            words = ACTION_WORDS.get(action, action.replace("_", " "))
            raise Refused(f"{who} can't {words}; ask an admin of your firm")

    def firm_for(self, firm_name: str | None = None) -> Firm:
        """The firm this actor acts on: their own, or (support) the one named."""
        if self.kind == "support":
            if not firm_name:
                raise Refused("Name the firm: add firm:\"Smith & Co\" to the command")
            return firms.find(firm_name)
        if firm_name and firms.find(firm_name).id != self.firm.id:
            raise NotFound("No such firm")
        return self.firm

    def client(self, firm: Firm, client_id: int) -> Client:
        """A client by id (from a button), only within a firm this actor may see."""
        if self.kind == "staff" and firm.id != self.firm.id:
            raise NotFound("That client does not exist")
        client = Client.get_or_none(Client.id == client_id, Client.firm == firm)
        if client is None:
            raise NotFound("That client does not exist")
        return client


NOBODY = Actor("nobody")


# Who is asking, for every Slack request and answer job (see db.Prepared): the staff
# member with their firm, in one query.
_SUPPORT = Prepared(SupportStaff.select().where(
    (SupportStaff.slack_team_id == Param("team")) & (SupportStaff.slack_user_id == Param("user")))
    .limit(1))
_STAFF = Prepared(Staff.select(Staff, Firm).join(Firm).where(
    (Staff.slack_team_id == Param("team")) & (Staff.slack_user_id == Param("user"))).limit(1))


def resolve(team_id: str | None, user_id: str | None) -> Actor:
    if not team_id or not user_id:
        return NOBODY
    support = _SUPPORT.first(team=team_id, user=user_id)
    if support:
        return Actor("support", support=support)
    staff = _STAFF.first(team=team_id, user=user_id)
    if staff is None or staff.slack_linked_at is None:
        return NOBODY
    if staff.password_changed_at > staff.slack_linked_at:
        return NOBODY  # the password changed since: connect again
    firm = staff.firm
    if firm.slack_team_id != team_id:
        return NOBODY
    return Actor("staff", firm=firm, staff=staff)


# --- connecting a chat identity to a LedgerSync account -----------------------------


@dataclass(frozen=True)
class Connected:
    ok: bool
    reason: str = ""
    fix: str = ""
    staff: Staff | None = None
    warning: str = ""


def connect(team_id: str, user_id: str, email: str, password: str) -> Connected:
    """The seeds' green check or red X, with the reason and the fix."""
    who = f"{team_id}:{user_id}"
    if _recent_failures(who) >= MAX_FAILURES:
        return Connected(False, "Too many failed tries", "Wait 15 minutes, then try again.")
    staff = Staff.get_or_none(Staff.email == (email or "").strip().lower())
    if not firms.check_password(staff, password):
        return _failed(who, "Wrong email or password",
                       "Check both for typos, or reset your password at app.ledgersync.com "
                       "(Forgot Password) and use the new one.")
    firm = staff.firm
    if firm.suspended:
        return _failed(who, "Your LedgerSync account is suspended",
                       "Contact LedgerSync support at support@ledgersync.com.")
    if firm.subscription_status not in ACTIVE_SUBSCRIPTIONS:
        return _failed(who, "Your LedgerSync subscription is not active",
                       "Renew it in LedgerSync (Settings → Billing), then connect again.")
    if firm.slack_team_id and firm.slack_team_id != team_id:
        return _failed(who, f"{firm.name} is connected to another Slack workspace",
                       "Connect from that workspace, or ask support to move it.")
    _link(staff, firm, team_id, user_id)
    warning = "" if firm.clients.exists() else (
        "No clients set up yet: add one with /ledgersync client add, or /ledgersync import.")
    return Connected(True, staff=staff, warning=warning)


def add_colleague(actor: Actor, user_id: str, email: str, role: str = "staff") -> Staff:
    """An admin vouches for a colleague in the firm's workspace: a staff account linked to
    that Slack user at once, with no usable password until one is set."""
    actor.require("team")
    team_id = actor.firm.slack_team_id
    with database.atomic():
        if slack_user_taken(team_id, user_id):
            raise Refused("That Slack user is already connected to a LedgerSync account")
        now = clock.now()
        staff = firms.add_staff(actor.firm, email, None, role=role, actor=actor.label,
                                slack_team_id=team_id, slack_user_id=user_id,
                                slack_linked_at=now, password_changed_at=now)
        events.record("slack.connected", firm=actor.firm, actor=actor.label,
                      staff=staff.id, email=staff.email)
    return staff


def slack_user_taken(team_id: str, user_id: str) -> bool:
    """Whether this Slack user already acts as someone: linked staff, or support."""
    staff = Staff.select().where(Staff.slack_team_id == team_id, Staff.slack_user_id == user_id,
                                 Staff.slack_linked_at.is_null(False))
    support = SupportStaff.select().where(SupportStaff.slack_team_id == team_id,
                                          SupportStaff.slack_user_id == user_id)
    return staff.exists() or support.exists()


def _link(staff: Staff, firm: Firm, team_id: str, user_id: str) -> None:
    now = clock.now()
    Staff.update(slack_team_id=None, slack_user_id=None, slack_linked_at=None).where(
        Staff.slack_team_id == team_id, Staff.slack_user_id == user_id, Staff.id != staff.id
    ).execute()
    Staff.update(slack_team_id=team_id, slack_user_id=user_id, slack_linked_at=now).where(
        Staff.id == staff.id).execute()
    if not firm.slack_team_id:
        Firm.update(slack_team_id=team_id).where(Firm.id == firm.id).execute()
    events.record("slack.connected", firm=firm, actor=f"staff:{staff.id}")


def _failed(who: str, reason: str, fix: str) -> Connected:
    events.record("slack.connect_failed", actor=who, reason=reason)
    return Connected(False, reason, fix)


def _recent_failures(who: str) -> int:
    since = clock.now() - FAILURE_WINDOW
    return Event.select().where(Event.kind == "slack.connect_failed", Event.actor == who,
                                Event.at >= since).count()


def disconnect(actor: Actor) -> bool:
    if actor.staff is None:
        return False
    Staff.update(slack_team_id=None, slack_user_id=None, slack_linked_at=None).where(
        Staff.id == actor.staff.id).execute()
    events.record("slack.disconnected", firm=actor.firm, actor=actor.label)
    return True


def looked_up(actor: Actor, firm: Firm, what: str) -> None:
    """Support's look-ups are written to the event log."""
    if actor.kind == "support":
        events.record("support.lookup", firm=firm, actor=actor.label, what=what[:200])
