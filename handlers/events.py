"""Channel-neutral events: what adapters hand to the core and what the core hands back.

Adapters (bot/channels/*) map platform updates to `Inbound` and render `Reply`.
Nothing here knows aiogram, pywa or HTTP.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

Kind = Literal["text", "command", "location", "photo", "choice"]
MAX_TEXT = 4000  # longer text is cut by the adapter before it reaches the core


@dataclass(frozen=True)
class MediaRef:
    """A photo already fetched, checked and stored by the adapter (content-addressed)."""

    sha256: str
    mime: str
    size: int
    path: str  # relative to the media directory
    channel_file_id: str | None = None  # e.g. Telegram file_id, reusable for re-sending


@dataclass(frozen=True)
class GeoAnswer:
    """What the geocoder said about this event, asked before its transaction: the address
    of a shared point (`name` only), or where a typed place is (`lat`, `lon`, `name`)."""

    name: str | None
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True)
class Inbound:
    channel: str  # "telegram" | "whatsapp" | "web"
    external_id: str  # the sender's id on the channel (user id)
    kind: Kind
    chat_id: str | None = None  # where to answer; == external_id in private chats
    chat_type: Literal["private", "group"] = "private"
    text: str | None = None
    command: str | None = None  # lower-case, without the slash ("lapor")
    args: str = ""
    lat: float | None = None
    lon: float | None = None
    photo: MediaRef | None = None
    photo_error: str | None = None  # "too_large" | "bad_type" | "download_failed"
    choice: str | None = None  # the id of the button that was pressed
    display_name: str | None = None
    language_hint: str | None = None  # the platform's language code, if any
    phone: str | None = None  # personal data: only set when the platform gives it
    geo: GeoAnswer | None = None  # the geocoder's answer, looked up before the transaction
    # the public handle on the channel (Telegram "@…"); "" = the platform says there is none,
    # None = not known (channels without handles, events made by the bot itself)
    username: str | None = None
    reply_to_bot: bool = False  # the message answers one of the bot's own messages


@dataclass(frozen=True)
class Choice:
    """A button. `id` comes back as `Inbound.choice` (≤ 64 bytes for Telegram)."""

    id: str
    label: str
    description: str | None = None  # shown in WhatsApp list rows


@dataclass(frozen=True)
class Reply:
    text: str
    choices: tuple[Choice, ...] = ()
    ask_location: bool = False  # offer a "share location" button
    location_label: str | None = None  # label of that button
    photo: MediaRef | None = None  # send this stored photo with `text` as caption
    remove_keyboard: bool = False
    page: int = 0  # a later page of a long list of choices (adapters that page, e.g. WhatsApp)
    # ask for an answer in place (Telegram ForceReply: in a group, the answer is a reply to
    # this message, which the bot receives even with its privacy mode on)
    force_reply: bool = False

    def to_payload(self) -> dict[str, Any]:
        """Plain JSON for the outbox (hand-written: `dataclasses.asdict` is slow here)."""
        return {
            "text": self.text,
            "choices": [
                {"id": c.id, "label": c.label, "description": c.description} for c in self.choices
            ],
            "ask_location": self.ask_location,
            "location_label": self.location_label,
            "photo": asdict(self.photo) if self.photo is not None else None,
            "remove_keyboard": self.remove_keyboard,
            "page": self.page,
            "force_reply": self.force_reply,
        }

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> Reply:
        data = dict(data)
        data["choices"] = tuple(Choice(**c) for c in data.get("choices") or ())
        if data.get("photo"):
            data["photo"] = MediaRef(**data["photo"])
        return cls(**data)


@dataclass
class Outgoing:
    """A reply addressed to someone, as written to the outbox."""

    channel: str
    address: str  # chat id / wa id on that channel
    reply: Reply
    identity_id: int | None = None
    priority: int = 50  # lower is sooner: 10 warning, 50 reply/status, 90 announcement
    kind: str = "reply"
    meta: dict[str, Any] = field(default_factory=dict)
    report_id: int | None = None  # the report it is about, if any
    broadcast_id: int | None = None  # the broadcast it belongs to, if any
    not_before: datetime | None = None  # not sent before this moment


PRIORITY_WARNING = 10
PRIORITY_REPLY = 50
PRIORITY_ANNOUNCEMENT = 90

# Outgoing kinds the transports treat specially (the rest are plain messages):
KIND_CARD = "card"  # a report card in an OPD's queue (meta["card_of"]: the report id)
KIND_CARD_EDIT = "card_edit"  # that card as it is now: edited in place (Telegram)
KIND_COMMANDS = "commands"  # a person's command menu (Telegram setMyCommands, meta below)
