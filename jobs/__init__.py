"""RQ entry points and their wiring. The database is the source of truth; Redis
only queues (`high` for what staff and clients are waiting on, `default` for
the rest) and schedules (reminders and expiries at their exact times)."""
