"""Tables of the open side: API keys for other city apps, and the web demo's mailbox.

Imported by `storage/models.py` and `storage/migrations/env.py` so they register in
`SQLModel.metadata`.  All datetimes are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel


class ApiKey(SQLModel, table=True):
    """A key another app (e-Kelurahan, e-Warga) uses for Open311 POST and non-public fields.

    Only the SHA-256 of the key is stored; `prefix` (the first characters) lets an operator
    tell keys apart in `lapor apikey list` without revealing them.
    """

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, index=True)
    prefix: str = Field(max_length=12)
    key_hash: str = Field(max_length=64, unique=True)
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class WebMessage(SQLModel, table=True):
    """A message the outbox sender delivered to a web (demo) chat; the page polls for these."""

    __tablename__ = "web_message"
    __table_args__ = (Index("ix_web_message_address_id", "address", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(max_length=128)
    outbox_id: int | None = Field(default=None, index=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime
