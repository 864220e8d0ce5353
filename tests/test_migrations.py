"""Schema versioning: a deployed database upgrades in place, data kept."""

from __future__ import annotations

from peewee import TextField

from core.invitations import clients
from core.records import SchemaVersion, migrations


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


def drop_bank_data(database):
    """As a database before migration 10 was (bank data, webhooks, API tokens)."""
    from playhouse.migrate import SchemaMigrator, migrate

    from core.platform.db import is_sqlite
    from core.records import (
        ApiToken,
        BankAccount,
        BankLinkSession,
        BankTransaction,
        ProviderWebhook,
    )

    database.drop_tables([BankTransaction, BankAccount, BankLinkSession, ProviderWebhook,
                          ApiToken])
    migrator = SchemaMigrator.from_database(database)
    sqlite = is_sqlite()
    if sqlite:  # SQLite drops a column by copying the table: its rows' children must stay
        database.pragma("foreign_keys", 0)
    migrate(migrator.drop_index("bank_connection", "bank_connection_item_id"))
    migrate(*[migrator.drop_column("bank_connection", name) for name in (
        "provider", "item_id", "access_sealed", "sync_cursor", "synced_at",
        "auto_invite_due_at", "auto_invited_at")],
        migrator.drop_column("firm", "auto_reconnect_invites"))
    if sqlite:
        database.pragma("foreign_keys", 1)


CLIENT_PAGES = "applied 9: sign-in codes; firm branding and contact; languages"
BANK_DATA = "applied 10: bank accounts, transactions, provider webhooks, API tokens"
BULK_DUE = "applied 11: index of a bulk run's due items"
DIGESTS = "applied 12: firm digests; failed deliveries by when"
INVITE_DELIVERY = "applied 13: an invite's delivery on the invite"


def migrator_cleanup(database):
    from playhouse.migrate import SchemaMigrator, migrate

    migrate(SchemaMigrator.from_database(database).drop_column("client", "notes"))
    SchemaVersion.delete().where(SchemaVersion.version > migrations.latest_version()).execute()


def test_a_version_1_database_upgrades_in_place(database):
    from core.platform.db import is_sqlite
    from core.records import (
        BulkItem,
        BulkRun,
        ClientSession,
        ClientThread,
        EarlyReceipt,
        OAuthState,
        SlackInstall,
        SlackLinkRequest,
    )

    database.drop_tables([BulkItem, BulkRun, ClientThread, EarlyReceipt, ClientSession,
                          SlackInstall, OAuthState, SlackLinkRequest])
    drop_message_slots(database)
    drop_bank_data(database)
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
                                    "applied 7: a message's reserved slot",
                                    "applied 8: Slack installs per workspace, OAuth states, "
                                    "account-link pages", CLIENT_PAGES, BANK_DATA,
                                    BULK_DUE, DIGESTS, INVITE_DELIVERY]
    assert database.table_exists(ClientThread._meta.table_name)
    assert database.table_exists(BulkItem._meta.table_name)
    assert database.table_exists(EarlyReceipt._meta.table_name)
    assert database.table_exists(ClientSession._meta.table_name)
    assert database.table_exists(SlackInstall._meta.table_name)
    assert migrations.current_version() == 13
    assert "bulk_item_due" in [i.name for i in database.get_indexes("bulk_item")]
    assert database.table_exists("bank_transaction") and database.table_exists("api_token")
    assert "auto_reconnect_invites" in [c.name for c in database.get_columns("firm")]
    if not is_sqlite():
        length = database.execute_sql(
            "SELECT character_maximum_length FROM information_schema.columns "
            "WHERE table_name = 'message' AND column_name = 'kind'").fetchone()[0]
        assert length == 40


def test_links_stored_before_masking_are_masked_in_place_and_still_sent_whole(firm, database):
    from core.invitations import invites
    from core.messaging import outbound
    from core.platform import tokens
    from core.records import Message

    sent = invites.send(clients.add(firm, "Old Link", email="old@example.com"), "email")
    token = tokens.unseal(sent.invite.token_sealed)
    whole = outbound.text_of(sent.message)
    Message.update(body=whole[0], html=whole[1]).execute()  # as an older version stored it
    SchemaVersion.delete().execute()
    SchemaVersion.create(version=5, name="revocable client sessions")
    drop_message_slots(database)
    drop_bank_data(database)
    assert migrations.upgrade() == ["applied 6: links masked in stored messages",
                                    "applied 7: a message's reserved slot",
                                    "applied 8: Slack installs per workspace, OAuth states, "
                                    "account-link pages", CLIENT_PAGES, BANK_DATA,
                                    BULK_DUE, DIGESTS, INVITE_DELIVERY]
    stored = Message.get_by_id(sent.message.id)
    assert token not in stored.body and token not in stored.html
    assert f"/i/{token[:4]}…" in stored.body
    assert outbound.text_of(stored) == whole


def as_of_version_7(database):
    """A database as the last release left it (schema 7): what 8 and later add, taken
    away (SQLite drops a column by copying its table: foreign keys off meanwhile)."""
    from playhouse.migrate import SchemaMigrator, migrate

    from core.platform.db import is_sqlite
    from core.records import OAuthState, SignInAttempt, SlackInstall, SlackLinkRequest

    drop_bank_data(database)
    database.drop_tables([SlackInstall, OAuthState, SlackLinkRequest, SignInAttempt])
    database.execute_sql("DROP INDEX IF EXISTS bulk_item_due")
    if is_sqlite():
        database.pragma("foreign_keys", 0)
    migrator = SchemaMigrator.from_database(database)
    migrate(*[migrator.drop_column("firm", name) for name in (
        "logo_url", "brand_color", "contact_phone", "contact_email", "language")],
        migrator.drop_column("client", "language"))
    if is_sqlite():
        database.pragma("foreign_keys", 1)
    SchemaVersion.delete().execute()
    SchemaVersion.create(version=7, name="a message's reserved slot")


def test_the_last_releases_database_upgrades_keeping_every_row(firm, database):
    """Foreign keys on, as in production: a migration that rebuilt a parent table
    (SQLite's way to add a NOT NULL column) would delete every row that refers to it."""
    from core.invitations import invites
    from core.records import Client, Event, Firm, Invite, Message, Staff

    invites.send(clients.add(firm, "Kept Client", email="kept@example.com"), "email")
    models = (Firm, Staff, Client, Invite, Message, Event)
    before = {m.__name__: m.select().count() for m in models}
    as_of_version_7(database)
    assert migrations.upgrade()[-4:] == [BANK_DATA, BULK_DUE, DIGESTS, INVITE_DELIVERY]
    assert {m.__name__: m.select().count() for m in models} == before
    assert "bulk_item_due" in [i.name for i in database.get_indexes("bulk_item")]
    kept = Firm.get_by_id(firm.id)
    assert kept.language == "en" and kept.auto_reconnect_invites is False
    assert Client.get(Client.name == "Kept Client").language is None


def test_a_database_before_digests_upgrades_keeping_every_firm(firm, database):
    """Migration 12 adds the firm's digest setting (Mondays, for every firm already
    there), the table of digests sent and the index of failed deliveries."""
    from playhouse.migrate import SchemaMigrator, migrate

    from core.platform.db import is_sqlite
    from core.records import Firm, FirmDigest

    database.drop_tables([FirmDigest])
    database.execute_sql("DROP INDEX IF EXISTS message_failed")
    if is_sqlite():
        database.pragma("foreign_keys", 0)
    migrate(SchemaMigrator.from_database(database).drop_column("firm", "digest"))
    if is_sqlite():
        database.pragma("foreign_keys", 1)
    SchemaVersion.delete().execute()
    SchemaVersion.create(version=11, name="index of a bulk run's due items")
    clients.add(firm, "Kept Client", email="kept@example.com")
    assert migrations.upgrade() == [DIGESTS, INVITE_DELIVERY]
    assert Firm.get_by_id(firm.id).digest == "monday" and firm.clients.count() == 1
    assert database.table_exists("firm_digest")
    assert "message_failed" in [i.name for i in database.get_indexes("message")]


def test_a_database_before_invite_deliveries_fills_them_from_the_texts(firm, database):
    """Migration 13 keeps what came of each invite's text on the invite (the funnel reads
    it there): filled from the texts already sent, then kept in step by receipts."""
    from playhouse.migrate import SchemaMigrator, migrate

    from core.invitations import invites
    from core.messaging import deliveries
    from core.platform.db import is_sqlite
    from core.records import Invite, Message

    failed = invites.send(clients.add(firm, "Failed Client", email="f@example.com"), "email")
    fine = invites.send(clients.add(firm, "Fine Client", email="g@example.com"), "email")
    Message.update(status="failed", error_message="mailbox full").where(
        Message.id == failed.message.id).execute()
    if is_sqlite():
        database.pragma("foreign_keys", 0)
    migrator = SchemaMigrator.from_database(database)
    migrate(migrator.drop_column("invite", "delivery"),
            migrator.drop_column("invite", "delivery_error"))
    if is_sqlite():
        database.pragma("foreign_keys", 1)
    SchemaVersion.delete().execute()
    SchemaVersion.create(version=12, name="firm digests; failed deliveries by when")
    assert migrations.upgrade() == [INVITE_DELIVERY]
    kept = {i.id: (i.delivery, i.delivery_error) for i in Invite.select()}
    assert kept[failed.invite.id] == ("failed", "mailbox full")
    assert kept[fine.invite.id] == (Message.get_by_id(fine.message.id).status, None)
    Message.update(provider_id="p-fine").where(Message.id == fine.message.id).execute()
    Message.update(status="sent").where(Message.id == fine.message.id).execute()
    assert deliveries.record("p-fine", "undelivered", reason="unknown number")
    assert (Invite.get_by_id(fine.invite.id).delivery,
            Invite.get_by_id(fine.invite.id).delivery_error) == ("undelivered", "unknown number")
