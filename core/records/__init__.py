"""What LedgerSync keeps: the tables (one module per domain), their one migration
history, and the event log.

Every table is importable from here (`from core.records import Invite`); each
lives in the module of its domain.
"""

from __future__ import annotations

from .accounts import ClientAccount, ClientSession, SignInAttempt
from .banks import BankAccount, BankConnection, BankLinkSession, BankTransaction, ProviderWebhook
from .base import BaseModel, JSONField, UTCDateTimeField
from .clients import Client
from .digests import FirmDigest
from .events import Event
from .firms import ApiToken, Firm, Staff, SupportStaff
from .invites import OPEN_INVITE, BulkItem, BulkRun, Invite
from .messages import Channel, ClientThread, EarlyReceipt, Kind, Message, OptOut, Status
from .schema_version import SchemaVersion
from .workspaces import OAuthState, SlackInstall, SlackLinkRequest

ALL_MODELS = [
    Firm,
    Staff,
    SupportStaff,
    Client,
    ClientAccount,
    Invite,
    ClientSession,
    Message,
    OptOut,
    BankConnection,
    Event,
    ClientThread,
    BulkRun,
    BulkItem,
    EarlyReceipt,
    SlackInstall,
    OAuthState,
    SlackLinkRequest,
    BankAccount,
    BankTransaction,
    BankLinkSession,
    ProviderWebhook,
    ApiToken,
    SignInAttempt,
    FirmDigest,
]

__all__ = [
    "UTCDateTimeField",
    "JSONField",
    "BaseModel",
    "Firm",
    "FirmDigest",
    "Staff",
    "SupportStaff",
    "ApiToken",
    "SlackInstall",
    "OAuthState",
    "SlackLinkRequest",
    "Client",
    "Invite",
    "OPEN_INVITE",
    "BulkRun",
    "BulkItem",
    "ClientAccount",
    "ClientSession",
    "SignInAttempt",
    "Status",
    "Channel",
    "Kind",
    "Message",
    "OptOut",
    "ClientThread",
    "EarlyReceipt",
    "BankConnection",
    "BankAccount",
    "BankTransaction",
    "BankLinkSession",
    "ProviderWebhook",
    "Event",
    "SchemaVersion",
    "ALL_MODELS",
]
