"""Each invited client's journey, in one SQL statement: the funnel's counting rules
(`core.reports.funnel`, docs/funnel.md) written once, for SQLite and PostgreSQL alike.

`JOURNEYS` gives one row per client whose invite was sent in the period — none per
invite, and no query per client: the database does the work, whatever the number of
invites. The columns:

- `grp`: what the client is counted under (`by`): the channel, the staff member who
  sent, the bulk run or the firm of their first invite of the period; '' for none;
- `first_sent`: when that first invite went;
- `reached`: the furthest stage, 1 invited · 2 delivered · 3 opened · 4 accepted ·
  5 connected (a later stage counts the earlier ones as reached);
- `seconds`: from `first_sent` to their first bank connected or restored after it;
- `stall`: where a client who didn't connect stands (`funnel.STALLS`), `waiting`
  while their link still works, `connected` otherwise; `refusal` and `failure`: the
  provider's reason of a refused bank login and of a delivery that failed, which
  `SUMMARY` gives as the `detail` of the stall they explain.

What came of each invite's text is read from the invite (`Invite.delivery`, kept in step
by `messaging.deliveries`), so no text is joined. Every instant is compared as stored
(UTC); the only words of SQL that differ are how two instants are subtracted
(`DIALECTS`). A refused bank login's detail is its event's detail (JSON: `funnel` reads
the reason in it).
"""

from __future__ import annotations

import re
from datetime import datetime

from core.platform.db import database, is_sqlite
from core.records import Invite

DIALECTS = {
    "sqlite": {"seconds": "(julianday(r.connected_at) - julianday(r.first_sent)) * 86400.0"},
    "postgres": {"seconds": "CAST(EXTRACT(EPOCH FROM (r.connected_at - r.first_sent)) "
                            "AS DOUBLE PRECISION)"},
}
# A value of a client's first (MIN) or latest (MAX) invite of the period, without joining
# the invites again: each value is keyed by its row's id (13 digits, so text order is id
# order) and the key cut off again (`_keyed`).
KEY = "CAST(1000000000000 + {id} AS VARCHAR(20))"
GROUPS = {
    None: "''",
    "channel": "i.channel",
    "staff": "COALESCE(CAST(i.sent_by_id AS VARCHAR(20)), '')",
    "run": "COALESCE(CAST(b.run_id AS VARCHAR(20)), '')",
    "firm": "CAST(i.firm_id AS VARCHAR(20))",
}
NOT_DELIVERED = "('failed', 'undelivered', 'canceled')"

JOURNEYS = """
reach AS (
  SELECT i.client_id, MAX(i.id) AS last_id, MIN(i.sent_at) AS first_sent,
         {grp} AS grp,
         MAX(CASE WHEN i.first_clicked_at IS NULL AND i.accepted_at IS NULL THEN 0 ELSE 1 END)
           AS opened,
         MAX(CASE WHEN i.accepted_at IS NULL THEN 0 ELSE 1 END) AS accepted,
         MAX(CASE WHEN i.first_clicked_at IS NOT NULL THEN i.id END) AS last_opened,
         MAX(CASE WHEN i.revoked_at IS NOT NULL THEN i.id END) AS last_revoked,
         MAX(CASE WHEN i.channel = 'sms' THEN i.id END) AS last_sms,
         MAX(CASE WHEN i.superseded_at IS NULL AND i.expired_at IS NULL
                   AND i.expires_at > {now} THEN i.id END) AS last_open,
         MAX(CASE WHEN i.delivery IN ('sent', 'delivered') THEN i.id END) AS last_delivered,
         MAX(CASE WHEN i.delivery IN {not_delivered} THEN i.id END) AS last_failed,
         MAX(CASE WHEN i.delivery IN {not_delivered}
                  THEN {key} || COALESCE(i.delivery_error, '') END) AS failure,
         MIN(CASE WHEN e.kind IN ('connection.connected', 'connection.restored')
                  AND e."at" >= i.sent_at THEN e."at" END) AS connected_at,
         MAX(CASE WHEN e.kind = 'connection.login_failed' AND e."at" >= i.sent_at
                  THEN {event_key} || COALESCE(e.detail, '') END) AS refusal,
         MAX(CASE WHEN e.kind = 'invite.disowned' AND e."at" >= i.sent_at
                  THEN e.invite_id END) AS disowned
  FROM invite i
  LEFT JOIN event e ON e.client_id = i.client_id AND {e_scope} e."at" >= {start}
    AND e.kind IN ('connection.connected', 'connection.restored', 'connection.login_failed',
                   'invite.disowned')
  {run_join}
  WHERE {i_scope} i.sent_at >= {start} AND i.sent_at < {end}
  GROUP BY i.client_id
),
stalled AS (
  SELECT r.client_id, r.grp, r.first_sent,
    CASE WHEN r.connected_at IS NOT NULL THEN 5 WHEN r.accepted = 1 THEN 4
         WHEN r.opened = 1 THEN 3 WHEN r.last_delivered IS NOT NULL THEN 2 ELSE 1 END
      AS reached,
    CASE WHEN r.connected_at IS NULL THEN NULL ELSE {seconds} END AS seconds,
    CASE WHEN r.connected_at IS NOT NULL THEN 'connected'
         WHEN r.last_revoked = r.last_id AND r.disowned = r.last_id THEN 'withdrawn'
         WHEN r.last_revoked = r.last_id THEN 'revoked'
         WHEN CASE WHEN r.last_sms = r.last_id
                   THEN r.client_id IN (SELECT c.id FROM opt_out o JOIN client c
                                        ON {c_scope} c.phone = o.address WHERE o.opted_out)
                   ELSE r.client_id IN (SELECT c.id FROM opt_out o JOIN client c
                                        ON {c_scope} c.email = o.address WHERE o.opted_out)
              END THEN 'opted_out'
         WHEN r.accepted = 1 AND r.refusal IS NOT NULL THEN 'bank_failed'
         WHEN r.accepted = 1 THEN 'no_bank'
         WHEN r.last_failed = r.last_id
              AND (r.last_delivered IS NULL OR r.last_delivered <> r.last_id)
              AND (r.last_opened IS NULL OR r.last_opened <> r.last_id) THEN 'not_delivered'
         WHEN r.last_open = r.last_id THEN 'waiting'
         WHEN r.opened = 1 THEN 'not_accepted'
         ELSE 'expired' END AS stall,
    SUBSTR(r.refusal, 14) AS refusal, SUBSTR(r.failure, 14) AS failure
  FROM reach r
)"""

# Whatever a funnel shows, from the journeys (computed once): the clients counted by
# group, stall and the provider's reason, with the stages they reached; the first names
# of each stall; and the times to connect at the ranks the median and the 90th
# percentile need, for each group and for everyone — a few dozen rows, whatever the
# number of clients, and only connected clients sorted by time.
SUMMARY = """
SELECT 'count' AS part, grp, stall, detail, COUNT(*) AS n,
       SUM(CASE WHEN reached >= 2 THEN 1 ELSE 0 END) AS delivered,
       SUM(CASE WHEN reached >= 3 THEN 1 ELSE 0 END) AS opened,
       SUM(CASE WHEN reached >= 4 THEN 1 ELSE 0 END) AS accepted,
       CAST(NULL AS INTEGER) AS nth, CAST(NULL AS DOUBLE PRECISION) AS seconds,
       CAST(NULL AS INTEGER) AS client_id, CAST(NULL AS VARCHAR(200)) AS name
FROM (SELECT grp, stall, reached,
             CASE stall WHEN 'bank_failed' THEN refusal WHEN 'not_delivered' THEN failure END
               AS detail
      FROM stalled) told
GROUP BY grp, stall, detail
UNION ALL
SELECT 'name', '', named.stall, NULL, 1, 0, 0, 0, named.nth, NULL, named.client_id,
       (SELECT c.name FROM client c WHERE c.id = named.client_id)
FROM (SELECT stall, client_id,
             ROW_NUMBER() OVER (PARTITION BY stall ORDER BY first_sent, client_id) AS nth
      FROM stalled WHERE stall NOT IN ('connected', 'waiting')) named
WHERE named.nth <= {names}
UNION ALL
SELECT 'time', timed.grp, 'connected', NULL, sizes.n, 0, 0, 0, timed.nth, timed.seconds, NULL,
       NULL
FROM (SELECT grp, seconds, ROW_NUMBER() OVER (PARTITION BY grp ORDER BY seconds) AS nth
      FROM stalled WHERE stall = 'connected') timed
JOIN (SELECT grp, COUNT(*) AS n FROM stalled WHERE stall = 'connected' GROUP BY grp) sizes
  ON sizes.grp = timed.grp
WHERE timed.nth - 1 IN {ranks}"""
# With groups, the times of everyone too (without, the one group is everyone).
EVERYONE = """
UNION ALL
SELECT 'all', '', 'connected', NULL, sizes.n, 0, 0, 0, timed.nth, timed.seconds, NULL, NULL
FROM (SELECT seconds, ROW_NUMBER() OVER (ORDER BY seconds) AS nth
      FROM stalled WHERE stall = 'connected') timed
CROSS JOIN (SELECT COUNT(*) AS n FROM stalled WHERE stall = 'connected') sizes
WHERE timed.nth - 1 IN {ranks}"""
COLUMNS = ("part", "grp", "stall", "detail", "n", "delivered", "opened", "accepted", "nth",
           "seconds", "client_id", "name")


def _ranks(n: str) -> str:
    """The 0-based ranks whose values the median and the 90th percentile interpolate
    between, among `n` sorted values: floor and ceiling of 0.5 (n − 1) and 0.9 (n − 1)."""
    return f"(({n} - 1) / 2, {n} / 2, (9 * ({n} - 1)) / 10, (9 * {n}) / 10)"


def _journeys(firm_id: int | None, by: str | None) -> str:
    """The WITH clause, its values still named ({firm}, {start}, {end}, {now})."""
    scoped = "{alias}.firm_id = {{firm}} AND" if firm_id is not None else ""
    run_join = "LEFT JOIN bulk_item b ON b.invite_id = i.id" if by == "run" else ""
    return "WITH " + JOURNEYS.format(
        not_delivered=NOT_DELIVERED, run_join=run_join,
        grp=f"SUBSTR(MIN({KEY.format(id='i.id')} || {GROUPS[by]}), 14)" if by else "''",
        key=KEY.format(id="i.id"), event_key=KEY.format(id="e.id"),
        **{f"{a}_scope": scoped.format(alias=a) for a in "iec"},
        firm="{firm}", start="{start}", end="{end}", now="{now}",
        **DIALECTS["sqlite" if is_sqlite() else "postgres"])


NAMED = re.compile(r"\{(firm|start|end|now|stall)\}")


def _bound(text: str, values: dict) -> tuple[str, list]:
    """`text` with each named value a parameter of the database's style, and the
    parameters in their order."""
    params: list = []

    def placeholder(match: re.Match) -> str:
        value = values[match.group(1)]
        params.append(Invite.sent_at.db_value(value) if isinstance(value, datetime) else value)
        return database.obj.param

    return NAMED.sub(placeholder, text), params


def summary(firm_id: int | None, start: datetime, end: datetime, now: datetime,
            by: str | None, names: int) -> list[tuple]:
    """The summary rows (`COLUMNS`) of a firm's journeys (every firm's: None)."""
    query = summary_query(firm_id, start, end, now, by, names)
    with database.atomic():
        planned_for_its_values()
        return database.execute_sql(*query).fetchall()


def planned_for_its_values() -> None:
    """On PostgreSQL, for the rest of this transaction (SET LOCAL, which a pooler in
    transaction mode allows): each run of a journeys statement planned for its own values,
    and without the JIT compiler.

    - A statement run a sixth time from one connection is prepared, and PostgreSQL may then
      plan it once for any firm and period: it can't tell 50,000 rows from 5, and chose
      nested loops that took 11 s instead of 0.2 (seen in bench/funnel.py).
    - The plan's estimated cost passes the JIT's threshold long before the work needs it,
      and compiling took longer (~160 ms) than the whole query runs without it."""
    if not is_sqlite():
        database.execute_sql("SELECT set_config('plan_cache_mode', 'force_custom_plan', true), "
                             "set_config('jit', 'off', true)")


def summary_query(firm_id: int | None, start: datetime, end: datetime, now: datetime,
                  by: str | None, names: int) -> tuple[str, list]:
    """`summary`'s SQL and parameters (for a benchmark's query plan)."""
    text = _journeys(firm_id, by) + (SUMMARY + (EVERYONE if by else "")).format(
        names=int(names), ranks=_ranks("sizes.n"))
    return _bound(text, {"firm": firm_id, "start": start, "end": end, "now": now})


def clients_stalled(firm_id: int, start: datetime, end: datetime, now: datetime,
                    stall: str) -> tuple[str, list]:
    """SQL for the ids of the firm's clients who stall at `stall`, with its parameters
    (a subquery: `Client.id.in_(SQL(...))`)."""
    text = "(" + _journeys(firm_id, None) + "\nSELECT client_id FROM stalled WHERE stall = {stall})"
    return _bound(text, {"firm": firm_id, "start": start, "end": end, "now": now,
                         "stall": stall})

