"""What every channel adapter provides.

Inbound: the adapter receives platform updates (long polling or webhook), stores each raw
update in the inbox with a dedupe key (`InboxSink.accept`) *before* acknowledging it, and
later turns a stored payload into a channel-neutral `Inbound` (`Channel.to_inbound`, which may
fetch media).  Outbound: the outbox sender calls `Transport.send` for one message at a time,
within the pace given by `Transport.limits`.  A transport may also offer a `paid_lane`
(`PaidLane`, Telegram's paid broadcasts): the sender then sends warnings on it, marked `paid`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from aiohttp import web

from handlers.events import Inbound, Reply

# The error of a message that could not go because the platform's window for free-form
# messages is closed (WhatsApp: 24 h after the person's last message) and no template fits.
WINDOW_CLOSED = "outside_24h_window"


@dataclass(frozen=True)
class RateLimits:
    global_per_s: float  # 0 = unlimited
    per_chat_per_s: float  # 0 = unlimited


@dataclass(frozen=True)
class PaidLane:
    """A faster lane a platform sells for bulk messages (Telegram's paid broadcasts:
    `allow_paid_broadcast`, up to 1,000 msg/s at 0.1 Star a message, still 1 msg/s per chat).

    The sender puts messages of `kinds` on it while the month's `budget` lasts (counted in the
    database, so every process shares one budget); the rest go at the free `Transport.limits`.
    """

    limits: RateLimits
    price: float  # per message, in `currency`
    budget: float  # per calendar month (UTC), in `currency`
    currency: str = "Stars"
    kinds: frozenset[str] = frozenset({"warning"})

    @property
    def max_messages(self) -> int:
        """Messages the monthly budget pays for."""
        return int(self.budget / self.price + 1e-9) if self.price > 0 else 0


@dataclass
class SendResult:
    """Outcome of one send.

    - sent: delivered to the platform; `message_id` recorded.
    - retry: transient (5xx, timeout, 429). `retry_after` seconds if the platform said so;
      `pause_channel` when the whole channel must wait (Telegram 429, WhatsApp 130429).
    - blocked: the person blocked the bot / number gone: identity marked inactive, not retried.
    - failed: permanent error (bad request); not retried.
    """

    status: Literal["sent", "retry", "blocked", "failed"]
    message_id: str | None = None
    retry_after: float | None = None
    pause_channel: bool = False
    error: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutboundMessage:
    """One outbox row as the transport sees it."""

    outbox_id: int
    channel: str
    address: str
    reply: Reply
    kind: str  # "reply" | "status" | "warning" | "announcement" | ...
    identity_id: int | None
    meta: dict[str, Any]
    # the identity's last message to us, read with the claim (WhatsApp's 24-hour window)
    last_inbound_at: datetime | None = None
    paid: bool = False  # send on the platform's paid lane (its price is reserved)


class Transport(Protocol):
    channel: str
    limits: RateLimits

    async def send(self, msg: OutboundMessage) -> SendResult: ...


class InboxSink(Protocol):
    async def accept(
        self, channel: str, key: str, payload: dict[str, Any], sender_key: str | None = None
    ) -> bool:
        """Durably store a raw update; False if that key was seen before (a replay).

        `sender_key` (the person's id on the channel) keeps one person's updates in order
        while different people are handled in parallel.
        """
        ...

    async def accept_many(
        self, channel: str, items: Sequence[tuple[str, dict[str, Any], str | None]]
    ) -> int:
        """Store a batch of (key, payload, sender_key) in one transaction; count of new ones."""
        ...


class Channel(Protocol):
    name: str

    @property
    def transport(self) -> Transport: ...

    async def start(self, inbox: InboxSink) -> None:
        """Begin receiving (start polling, set webhook); must return promptly."""
        ...

    async def stop(self) -> None: ...

    def register_routes(self, app: web.Application) -> None:
        """Add webhook routes to the bot's HTTP server (may do nothing)."""
        ...

    async def to_inbound(self, payload: dict[str, Any]) -> list[Inbound]:
        """Turn one stored raw update into zero or more neutral events (fetches media)."""
        ...
