"""Schema versioning: a fresh database gets today's schema and the latest version
stamp; an existing one gets each pending migration, in order, in place.

To change the schema: change the model, then append a migration below that makes
the same change to an existing database with `playhouse.migrate`, e.g.

    def _add_client_notes(migrator):
        return [migrator.add_column("client", "notes", TextField(null=True))]

    MIGRATIONS.append(Migration(2, "client notes", _add_client_notes))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from peewee import SQL, BooleanField, CharField
from playhouse.migrate import SchemaMigrator, migrate

from core.platform import tokens
from core.platform.db import database, is_sqlite

from . import (
    ALL_MODELS,
    ApiToken,
    BankAccount,
    BankConnection,
    BankLinkSession,
    BankTransaction,
    BulkItem,
    BulkRun,
    Client,
    ClientSession,
    ClientThread,
    EarlyReceipt,
    Firm,
    Invite,
    Message,
    OAuthState,
    ProviderWebhook,
    SchemaVersion,
    SignInAttempt,
    SlackInstall,
    SlackLinkRequest,
)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    operations: Callable[[SchemaMigrator], list]


def _initial(migrator: SchemaMigrator) -> list:
    database.create_tables(ALL_MODELS)
    return []


def _client_threads(migrator: SchemaMigrator) -> list:
    database.create_tables([ClientThread])
    return []


def _bulk_runs(migrator: SchemaMigrator) -> list:
    database.create_tables([BulkRun, BulkItem])
    return []


def _receipts_and_kinds(migrator: SchemaMigrator) -> list:
    database.create_tables([EarlyReceipt])
    if is_sqlite():
        return []  # SQLite does not enforce lengths
    return [migrator.alter_column_type("message", "kind", CharField(max_length=40))]


def _client_sessions(migrator: SchemaMigrator) -> list:
    database.create_tables([ClientSession])
    return []


def _mask_stored_links(migrator: SchemaMigrator) -> list:
    """Messages written before links were masked at rest: mask them now, so a copy
    of the database taken after the upgrade holds no working link."""
    rows = Message.select(Message.id, Message.body, Message.html).where(
        Message.body.contains("/i/") | Message.html.contains("/i/"))
    for row in rows.iterator():
        body, html = tokens.redact(row.body), row.html and tokens.redact(row.html)
        if (body, html) != (row.body, row.html):
            Message.update(body=body, html=html).where(Message.id == row.id).execute()
    return []


def _message_slots(migrator: SchemaMigrator) -> list:
    return [migrator.add_column("message", "not_before", Message.not_before)]


def _slack_installs(migrator: SchemaMigrator) -> list:
    database.create_tables([SlackInstall, OAuthState, SlackLinkRequest])
    return []


def _bank_data_and_api(migrator: SchemaMigrator) -> list:
    """A connection's provider side (item, sealed access token, sync cursor),
    its accounts and transactions, hosted link sessions, provider webhooks seen, API
    tokens, and the firm's automatic reconnect invites."""
    database.create_tables([BankAccount, BankTransaction, BankLinkSession, ProviderWebhook,
                            ApiToken])
    table = BankConnection._meta.table_name
    columns = ("item_id", "access_sealed", "sync_cursor", "synced_at", "auto_invite_due_at",
               "auto_invited_at")
    flag = BooleanField(default=False, constraints=[SQL("DEFAULT FALSE")])
    provider = CharField(max_length=16, default="sandbox", constraints=[SQL("DEFAULT 'sandbox'")])
    return [_not_null(migrator, "firm", "auto_reconnect_invites", flag),
            _not_null(migrator, table, "provider", provider),
            *(migrator.add_column(table, name, BankConnection._meta.fields[name])
              for name in columns)]  # (item_id's index comes with its column)


def _not_null(migrator: SchemaMigrator, table: str, name: str, field):
    """A NOT NULL column with a default, in one ALTER TABLE. (playhouse's add_column adds
    it nullable and then NOT NULL, which SQLite before 3.53 does by copying the table and
    dropping the old one — and dropping a table with foreign keys on deletes the rows
    that refer to it: a firm's clients, invites, messages…)"""
    return migrator.add_column(table, name, field, allow_not_null=True)


CLIENT_PAGES_COLUMNS = {"firm": ("logo_url", "brand_color", "contact_phone", "contact_email",
                                 "language"),
                        "client": ("language",)}


def _client_pages(migrator: SchemaMigrator) -> list:
    """Sign-in codes; the firm's logo, colour, contact and language; the
    client's language. Columns already there (a database made at this schema) are
    left as they are."""
    database.create_tables([SignInAttempt])
    steps = []
    for model in (Firm, Client):
        table = model._meta.table_name
        have = {column.name for column in database.get_columns(table)}
        steps += [_added(migrator, table, name, model._meta.fields[name])
                  for name in CLIENT_PAGES_COLUMNS[table] if name not in have]
    return steps


def _added(migrator: SchemaMigrator, table: str, name: str, field):
    if field.null:
        return migrator.add_column(table, name, field)
    default = CharField(max_length=field.max_length, default=field.default,
                        constraints=[SQL(f"DEFAULT '{field.default}'")])
    return _not_null(migrator, table, name, default)


def _bulk_due_index(migrator: SchemaMigrator) -> list:
    """The partial index by which a bulk run's next due item is claimed."""
    BulkItem._schema.create_indexes(safe=True)  # only the missing one is made
    return []


MIGRATIONS: list[Migration] = [
    Migration(1, "initial schema", _initial),
    Migration(2, "chat threads for client texts", _client_threads),
    Migration(3, "bulk invite runs", _bulk_runs),
    Migration(4, "early delivery receipts; longer message kinds", _receipts_and_kinds),
    Migration(5, "revocable client sessions", _client_sessions),
    Migration(6, "links masked in stored messages", _mask_stored_links),
    Migration(7, "a message's reserved slot", _message_slots),
    Migration(8, "Slack installs per workspace, OAuth states, account-link pages",
              _slack_installs),
    Migration(9, "sign-in codes; firm branding and contact; languages", _client_pages),
    Migration(10, "bank accounts, transactions, provider webhooks, API tokens",
              _bank_data_and_api),
    Migration(11, "index of a bulk run's due items", _bulk_due_index),
]


def current_version() -> int:
    if not database.table_exists(SchemaVersion._meta.table_name):
        return 0
    latest = SchemaVersion.select(SchemaVersion.version).order_by(SchemaVersion.version.desc())
    row = latest.first()
    return row.version if row else 0


def latest_version() -> int:
    return max(m.version for m in MIGRATIONS)


def upgrade() -> list[str]:
    """Bring the bound database to the latest version; return what was applied."""
    with database.atomic():
        _lock()
        database.create_tables([SchemaVersion])
        version = current_version()
        if version == 0 and not database.table_exists(ALL_MODELS[0]._meta.table_name):
            database.create_tables(ALL_MODELS)
            SchemaVersion.create(version=latest_version(), name="created at latest schema")
            return [f"created schema version {latest_version()}"]
        applied = []
        migrator = SchemaMigrator.from_database(database.obj)
        for step in sorted(MIGRATIONS, key=lambda m: m.version):
            if step.version > version:
                migrate(*step.operations(migrator))
                SchemaVersion.create(version=step.version, name=step.name)
                applied.append(f"applied {step.version}: {step.name}")
        return applied


def _lock() -> None:
    """Two release processes at once: the second waits for the first (PostgreSQL). A
    transaction's lock, released at its end, not a session's: it holds through
    PgBouncer's transaction pooling, where a session lock would be lost."""
    if not is_sqlite():
        database.execute_sql("SELECT pg_advisory_xact_lock(7413001)")


def _digests(migrator: SchemaMigrator) -> list:
    """The firm's digest setting (on by default: Mondays), the digests sent, and the
    index of failed deliveries by when. What is there already is left as it is."""
    from . import FirmDigest

    database.create_tables([FirmDigest])
    Message._schema.create_indexes(safe=True)  # only the missing one is made
    have = {column.name for column in database.get_columns("firm")}
    return [] if "digest" in have else [_added(migrator, "firm", "digest", Firm.digest)]


MIGRATIONS.append(Migration(12, "firm digests; failed deliveries by when", _digests))


def _invite_delivery(migrator: SchemaMigrator) -> list:
    """What came of each invite's text, on the invite (for the funnel), filled from the
    texts already sent. Columns already there are left as they are."""
    have = {column.name for column in database.get_columns("invite")}
    migrate(*(migrator.add_column("invite", name, Invite._meta.fields[name])
              for name in ("delivery", "delivery_error") if name not in have))
    text = ("SELECT m.{column} FROM message m WHERE m.invite_id = invite.id "
            "AND m.kind = 'invite' ORDER BY m.id DESC LIMIT 1")
    database.execute_sql(f"UPDATE invite SET delivery = ({text.format(column='status')}), "
                         f"delivery_error = ({text.format(column='error_message')})")
    return []


MIGRATIONS.append(Migration(13, "an invite's delivery on the invite", _invite_delivery))
