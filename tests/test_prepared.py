"""Statements on hot paths (`db.Prepared`, `db.create` in core.platform.db): SQL written once per
kind of database, values bound at each run, results as peewee gives them — on SQLite
and on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from core.invitations import invites
from core.platform import clock as core_clock
from core.platform import db
from core.platform.db import Param, Prepared
from core.records import Client, Event, Firm, Invite

# Module-level, as in core: the suite runs each test on SQLite, then PostgreSQL, in one
# process, so the second run of each statement is the other database's (its SQL is kept
# per kind of database: '?' placeholders would fail on PostgreSQL).
BY_CLIENT = Prepared(Invite.select(Invite, Client, Firm).join(Client).join(Firm)
                     .where(Invite.client == Param("client"),
                            Invite.expires_at > Param("after")).order_by(Invite.id))
RENAME = Prepared(Client.update(name=Param("name", Client.name))
                  .where(Client.id == Param("id")))


def test_a_prepared_select_binds_new_values_each_run(clock, firm, maria):
    invite = invites.send(maria, "sms").invite
    now = core_clock.now()
    found = BY_CLIENT.rows(client=maria.id, after=now)
    assert [i.id for i in found] == [invite.id]
    assert found[0].client.name == "Maria Gonzalez" and found[0].client.firm.name == "Smith & Co"
    # A datetime is converted as the field converts it: the same run, later, finds none.
    assert BY_CLIENT.rows(client=maria.id, after=now + timedelta(days=30)) == []
    assert BY_CLIENT.first(client=maria.id + 1000, after=now) is None


def test_a_prepared_update_counts_the_rows_it_changed(firm, maria):
    assert RENAME.run(id=maria.id, name="María González") == 1
    assert RENAME.run(id=maria.id + 1000, name="Nobody") == 0
    assert Client.get_by_id(maria.id).name == "María González"


def test_create_writes_the_row_with_the_models_defaults(firm, maria):
    event = db.create(Event, kind="test.made", firm=firm, client=maria, detail={"n": 1})
    again = db.create(Event, kind="test.made", firm=firm, client=maria, detail={"n": 2})
    assert again.id == event.id + 1  # each run has its own values and id
    stored = Event.get_by_id(event.id)
    assert (stored.kind, stored.detail, stored.client_id) == ("test.made", {"n": 1}, maria.id)
    assert stored.at is not None  # the model's default, filled in as Model.create does
