"""Render a channel-neutral `Reply` as WhatsApp Cloud API message objects (pure functions).

Each function returns a `WaMessage`: the message `type` and the object that goes under that key
in `POST /{phone_id}/messages` (pywa's `GraphAPI.send_message(typ=..., msg=...)`).

Rules (Meta's limits, checked again by `tests/fakes/graph_api.py`):

- no choices → `text` (body ≤ 4096);
- 1–3 choices → interactive reply `button` (title ≤ 20, id ≤ 256, body ≤ 1024);
- 4–10 choices → interactive `list`, one section (row title ≤ 24, description ≤ 72,
  button label ≤ 20, at most 10 rows);
- more than 10 → a list with 9 rows and a "More" row whose id encodes (outbox id, page);
  picking it comes back as the core's choice `more:<outbox id>:<page>`, answered with the
  same reply at that page (handlers/paging.py; `more_row_id` / `parse_more_row_id`);
- `ask_location` → interactive `location_request_message` (takes precedence over choices:
  WhatsApp cannot combine the two in one message);
- `photo` → `image` with the text as caption (≤ 1024); with 1–3 choices the photo becomes the
  header of the button message instead;
- a template (outside the 24-hour window) carries the text as its one body parameter, flattened:
  Meta refuses a parameter with a new-line, a tab or more than 4 consecutive spaces (132018), so
  lines are joined on one line (`template_parameter`), and cut to `TEMPLATE_PARAM_MAX`.

Over-long labels are cut with "…"; an over-long choice id is an error (cutting it would make the
answer unrecognisable), raised as `RenderError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from handlers.events import KIND_CARD, KIND_CARD_EDIT, Choice, Reply

if TYPE_CHECKING:
    from bot.config import Settings

TEXT_MAX = 4096
INTERACTIVE_BODY_MAX = 1024
CAPTION_MAX = 1024
BUTTON_TITLE_MAX = 20
BUTTON_ID_MAX = 256
MAX_BUTTONS = 3
LIST_BUTTON_MAX = 20
ROW_TITLE_MAX = 24
ROW_DESCRIPTION_MAX = 72
ROW_ID_MAX = 200
MAX_ROWS = 10
PAGE_ROWS = MAX_ROWS - 1  # rows per page when a "More" row is needed
# A template's body, its own words and the parameter together, is at most 1024 characters
# (else 132005): the parameter leaves 124 for the template's words (README: under 50).
TEMPLATE_PARAM_MAX = 900
ELLIPSIS = "…"
LINE_JOIN = " · "  # between two lines of a flattened text, unless the first ends a sentence
_SENTENCE_END = frozenset(".!?:;,…·")

_MORE_PREFIX = "wa.more:"
_MORE_RE = re.compile(r"^wa\.more:(\d+):(\d+)$")


class RenderError(ValueError):
    """The reply cannot be expressed within WhatsApp's limits."""


@dataclass(frozen=True)
class WaMessage:
    """One Cloud API message: `type` and the object stored under that key."""

    type: str
    body: dict[str, Any]

    def to_request(self, to: str | None = None, recipient: str | None = None) -> dict[str, Any]:
        """The full JSON body of `POST /{phone_id}/messages` (for tests and logs)."""
        data: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "type": self.type,
            self.type: self.body,
        }
        if to is not None:
            data["to"] = to
        if recipient is not None:
            data["recipient"] = recipient
        return data


def cut(text: str, limit: int) -> str:
    """`text` shortened to at most `limit` characters, ending with "…" when cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + ELLIPSIS


def more_row_id(outbox_id: int, page: int) -> str:
    """The id of the "More" row: which outbox row's reply, and which page to show next."""
    return f"{_MORE_PREFIX}{outbox_id}:{page}"


def parse_more_row_id(choice_id: str) -> tuple[int, int] | None:
    """(outbox id, page) if `choice_id` is a "More" row id, else None."""
    m = _MORE_RE.match(choice_id)
    return (int(m.group(1)), int(m.group(2))) if m else None


def page_choices(choices: tuple[Choice, ...], page: int) -> tuple[tuple[Choice, ...], bool]:
    """The choices shown on `page` (0-based) and whether a "More" row follows them.

    A page shows up to 10 choices when they are the last ones, else 9 and a "More" row.
    """
    rest = choices[page * PAGE_ROWS :]
    if len(rest) <= MAX_ROWS:
        return rest, False
    return rest[:PAGE_ROWS], True


def _check_id(choice_id: str, limit: int) -> str:
    if not choice_id:
        raise RenderError("empty choice id")
    if len(choice_id) > limit:
        raise RenderError(f"choice id longer than {limit} characters: {choice_id[:40]!r}…")
    return choice_id


def render_text(text: str) -> WaMessage:
    return WaMessage("text", {"body": cut(text, TEXT_MAX), "preview_url": False})


def render_buttons(
    text: str, choices: tuple[Choice, ...], image_id: str | None = None
) -> WaMessage:
    """Interactive reply buttons (1–3), optionally with an uploaded image as header."""
    if not 1 <= len(choices) <= MAX_BUTTONS:
        raise RenderError(f"reply buttons need 1..{MAX_BUTTONS} choices, got {len(choices)}")
    interactive: dict[str, Any] = {
        "type": "button",
        "body": {"text": cut(text, INTERACTIVE_BODY_MAX)},
        "action": {
            "buttons": [
                {
                    "type": "reply",
                    "reply": {
                        "id": _check_id(c.id, BUTTON_ID_MAX),
                        "title": cut(c.label, BUTTON_TITLE_MAX),
                    },
                }
                for c in choices
            ]
        },
    }
    if image_id is not None:
        interactive["header"] = {"type": "image", "image": {"id": image_id}}
    return WaMessage("interactive", interactive)


def _row(choice: Choice) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": _check_id(choice.id, ROW_ID_MAX),
        "title": cut(choice.label, ROW_TITLE_MAX),
    }
    if choice.description:
        row["description"] = cut(choice.description, ROW_DESCRIPTION_MAX)
    return row


def render_list(
    text: str,
    choices: tuple[Choice, ...],
    button_label: str,
    more: Choice | None = None,
) -> WaMessage:
    """An interactive list with one section; `more` (if given) is appended as the last row."""
    rows = [_row(c) for c in choices]
    if more is not None:
        rows.append(_row(more))
    if not 1 <= len(rows) <= MAX_ROWS:
        raise RenderError(f"a list needs 1..{MAX_ROWS} rows, got {len(rows)}")
    return WaMessage(
        "interactive",
        {
            "type": "list",
            "body": {"text": cut(text, INTERACTIVE_BODY_MAX)},
            "action": {
                "button": cut(button_label, LIST_BUTTON_MAX),
                "sections": [{"rows": rows}],
            },
        },
    )


def render_location_request(text: str) -> WaMessage:
    return WaMessage(
        "interactive",
        {
            "type": "location_request_message",
            "body": {"text": cut(text, INTERACTIVE_BODY_MAX)},
            "action": {"name": "send_location"},
        },
    )


def render_image(image_id: str, caption: str) -> WaMessage:
    body: dict[str, Any] = {"id": image_id}
    if caption:
        body["caption"] = cut(caption, CAPTION_MAX)
    return WaMessage("image", body)


AS_TEMPLATE = "as_template"  # outbox meta: send as the kind's template, never free-form


def template_names(settings: Settings) -> dict[str, str]:
    """The approved template each outbox kind goes as outside the 24-hour window.

    Status changes and officers' cards (new reports, reminders, summaries) go as the status
    template; warnings, announcements and sensor notices to admins as the warning template.
    Replies have none: they answer a message, so the window is open. An empty setting means
    no template for those kinds."""
    status, warning = settings.whatsapp_template_status, settings.whatsapp_template_warning
    names = {
        "status": status,
        "officer": status,
        KIND_CARD: status,  # a report card in an OPD's queue
        KIND_CARD_EDIT: status,
        "warning": warning,
        "announcement": warning,
        "admin_alert": warning,
    }
    return {kind: name for kind, name in names.items() if name}


def template_parameter(text: str, limit: int = TEMPLATE_PARAM_MAX) -> str:
    """`text` as one template body parameter Meta accepts: on one line (lines joined with
    " · ", or a space after a line that ends a sentence), every run of blanks (tabs, several
    spaces, no-break spaces) one space, at most `limit` characters."""
    out = ""
    for raw in text.splitlines():
        line = " ".join(raw.split())
        if not line:
            continue
        if out:
            out += " " if out[-1] in _SENTENCE_END else LINE_JOIN
        out += line
    return cut(out, limit)


def render_template(name: str, lang: str, text: str) -> WaMessage:
    """An approved template whose body has one text parameter (`{{1}}`) carrying `text`
    (flattened: `template_parameter`)."""
    param = template_parameter(text)
    if not param:
        raise RenderError("a template parameter cannot be empty")
    return WaMessage(
        "template",
        {
            "name": name,
            "language": {"code": lang},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": param}]}],
        },
    )


def render_reply(
    reply: Reply,
    *,
    outbox_id: int,
    more_label: str,
    list_label: str | None = None,
    page: int = 0,
    image_id: str | None = None,
) -> WaMessage:
    """Choose the message shape for `reply` (see the module docstring).

    `more_label` is the translated "More" row title and `list_label` the translated label of
    the button that opens a list (msgid "Choose"; falls back to `more_label`).  `image_id` is
    the uploaded media id of `reply.photo`, if it has one.  `page` > 0 shows a later page of a
    long list (`Reply.page`, set by the core when "More" was picked).
    """
    label = list_label or more_label
    if reply.ask_location:
        return render_location_request(reply.text)
    choices = reply.choices
    if not choices:
        if image_id is not None:
            return render_image(image_id, reply.text)
        return render_text(reply.text)
    if len(choices) <= MAX_BUTTONS and page == 0:
        return render_buttons(reply.text, choices, image_id=image_id)
    shown, has_more = page_choices(choices, page)
    if not shown:
        raise RenderError(f"page {page} is past the end ({len(choices)} choices)")
    more = Choice(id=more_row_id(outbox_id, page + 1), label=more_label) if has_more else None
    return render_list(reply.text, shown, label, more=more)
