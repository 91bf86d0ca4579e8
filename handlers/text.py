"""Text helpers of the core: the gettext marker and cleaning what people type."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

Gettext = Callable[[str], str]

# Zero-width and other invisible format characters (Unicode category Cf: ZWSP, ZWJ, BOM, …)
# and the line/paragraph separators: they make a text look longer than what it says.
_INVISIBLE = re.compile(r"[\u2028\u2029]")


def N_(msgid: str) -> str:
    """Mark a msgid for extraction where it is translated later (`-k N_`)."""
    return msgid


def visible(text: str) -> str:
    """`text` without invisible characters, stripped: what a reader actually sees."""
    kept = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return _INVISIBLE.sub(" ", kept).strip()
