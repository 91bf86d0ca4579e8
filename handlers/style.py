"""What the core must know about a channel to word and shape its messages (by channel name).

- Telegram: commands are typed with a slash and listed in the bot's command menu; the bot can
  edit its own earlier messages (the live queue cards).
- WhatsApp: no command menu; commands are typed words ("lapor", "status PLU-…", see the
  adapter's `parse_command`), so texts name them without the slash; nothing can be edited;
  an interactive message (one with buttons) holds at most 1024 characters.
- The web demo: commands with a slash, no edits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ChannelStyle:
    slash_commands: bool = True  # False: commands are typed words, texts drop the slash
    edits: bool = False  # earlier messages of the bot can be edited in place
    page_chars: int = 3500  # a text with buttons (a page of a long list) stays under this


STYLES = {
    "telegram": ChannelStyle(slash_commands=True, edits=True),
    "whatsapp": ChannelStyle(slash_commands=False, edits=False, page_chars=900),
    "web": ChannelStyle(),
}
DEFAULT = ChannelStyle()

# "/lapor" at the start of the text or after a space, bracket or quote; not inside a URL
# ("https://…/lapor") or a fraction ("km/jam").
_COMMAND = re.compile(r"(?<![^\s(“\"'‘«])/([a-z][a-z_]{1,31})\b")


def style(channel: str) -> ChannelStyle:
    return STYLES.get(channel, DEFAULT)


def command_text(channel: str, text: str) -> str:
    """`text` as the channel shows commands: "/lapor" stays on Telegram, is "lapor" on
    WhatsApp (typed words)."""
    if style(channel).slash_commands or "/" not in text:
        return text
    return _COMMAND.sub(r"\1", text)


def contact_links(channel: str, external_id: str, username: str | None) -> list[str]:
    """How an officer reaches someone on a channel: "@handle" and a link to the chat on
    Telegram, a wa.me link on WhatsApp (for an id that is a phone number)."""
    if channel == "telegram":
        handle = [f"@{username}"] if username else []
        return [*handle, f"tg://user?id={external_id}"]
    if channel == "whatsapp" and external_id.isdigit():
        return [f"https://wa.me/{external_id}"]
    return []
