"""The schema's version: which migrations have been applied."""

from __future__ import annotations

from peewee import CharField, IntegerField

from core.platform import clock

from .base import BaseModel, UTCDateTimeField


class SchemaVersion(BaseModel):
    version = IntegerField(primary_key=True)
    name = CharField(max_length=200)
    applied_at = UTCDateTimeField(default=clock.now)
