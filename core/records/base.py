"""The fields and the base every table shares: instants stored as UTC (naive in the
column, aware in Python) the same way on SQLite and PostgreSQL; JSON as sorted text."""

from __future__ import annotations

import json

from peewee import DateTimeField, Model, TextField

from core.platform import clock
from core.platform.db import database


class UTCDateTimeField(DateTimeField):
    """Aware UTC in Python, naive UTC in the column (text-comparable on SQLite)."""

    def db_value(self, value):
        if value is None:
            return None
        return clock.as_utc(value).replace(tzinfo=None)

    def python_value(self, value):
        value = super().python_value(value)
        if value is None or isinstance(value, str):
            return value
        return clock.as_utc(value)


class JSONField(TextField):
    def db_value(self, value):
        return None if value is None else json.dumps(value, sort_keys=True)

    def python_value(self, value):
        return None if value is None else json.loads(value)


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False

    def refreshed(self):
        """The same row as it is in the database now."""
        return type(self).get_by_id(self._pk)
