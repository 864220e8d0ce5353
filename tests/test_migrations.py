"""Schema versioning: a deployed database upgrades in place, data kept."""

from __future__ import annotations

from peewee import TextField

from core import clients, migrations
from core.models import SchemaVersion


def test_fresh_database_is_stamped_and_upgrade_is_idempotent(database):
    assert migrations.current_version() == migrations.latest_version()
    assert migrations.upgrade() == []


def test_a_new_migration_applies_in_place_and_keeps_data(firm, database, monkeypatch):
    client = clients.add(firm, "Kept Client", email="kept@example.com")

    def add_notes(migrator):
        return [migrator.add_column("client", "notes", TextField(null=True))]

    step = migrations.Migration(migrations.latest_version() + 1, "client notes", add_notes)
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, step])
    assert migrations.upgrade() == [f"applied {step.version}: client notes"]
    assert migrations.upgrade() == []
    columns = [c.name for c in database.get_columns("client")]
    assert "notes" in columns
    assert clients.find(firm, "kept client").id == client.id
    assert SchemaVersion.select().count() == 2
    migrator_cleanup(database)


def drop_message_slots(database):
    """As a database before migration 7 was."""
    from playhouse.migrate import SchemaMigrator, migrate

    migrate(SchemaMigrator.from_database(database).drop_column("message", "not_before"))


def migrator_cleanup(database):
    from playhouse.migrate import SchemaMigrator, migrate

    migrate(SchemaMigrator.from_database(database).drop_column("client", "notes"))
    SchemaVersion.delete().where(SchemaVersion.version > migrations.latest_version()).execute()


def test_a_version_1_database_upgrades_in_place(database):
    from core.db import is_sqlite
    from core.models import BulkItem, BulkRun, ClientSession, ClientThread, EarlyReceipt

    database.drop_tables([BulkItem, BulkRun, ClientThread, EarlyReceipt, ClientSession])
    drop_message_slots(database)
    if not is_sqlite():
        database.execute_sql("ALTER TABLE message ALTER COLUMN kind TYPE VARCHAR(20)")
    SchemaVersion.delete().execute()
    SchemaVersion.create(version=1, name="initial schema")
    assert migrations.current_version() == 1
    assert migrations.upgrade() == ["applied 2: chat threads for client texts",
                                    "applied 3: bulk invite runs",
                                    "applied 4: early delivery receipts; longer message kinds",
                                    "applied 5: revocable client sessions",
                                    "applied 6: links masked in stored messages",
                                    "applied 7: a message's reserved slot"]
    assert database.table_exists(ClientThread._meta.table_name)
    assert database.table_exists(BulkItem._meta.table_name)
    assert database.table_exists(EarlyReceipt._meta.table_name)
    assert database.table_exists(ClientSession._meta.table_name)
    assert migrations.current_version() == 7
    if not is_sqlite():
        length = database.execute_sql(
            "SELECT character_maximum_length FROM information_schema.columns "
            "WHERE table_name = 'message' AND column_name = 'kind'").fetchone()[0]
        assert length == 40


def test_links_stored_before_masking_are_masked_in_place_and_still_sent_whole(firm, database):
    from core import invites, outbound, tokens
    from core.models import Message

    sent = invites.send(clients.add(firm, "Old Link", email="old@example.com"), "email")
    token = tokens.unseal(sent.invite.token_sealed)
    whole = outbound.text_of(sent.message)
    Message.update(body=whole[0], html=whole[1]).execute()  # as an older version stored it
    SchemaVersion.delete().execute()
    SchemaVersion.create(version=5, name="revocable client sessions")
    drop_message_slots(database)
    assert migrations.upgrade() == ["applied 6: links masked in stored messages",
                                    "applied 7: a message's reserved slot"]
    stored = Message.get_by_id(sent.message.id)
    assert token not in stored.body and token not in stored.html
    assert f"/i/{token[:4]}…" in stored.body
    assert outbound.text_of(stored) == whole
