"""Tiny HTML templates translated with gettext (no template engine needed).

In `bot/web/templates/*.html`:
- `{{_ English text }}` becomes the translation (HTML-escaped) in the page's language;
- `{{ name }}` becomes `context[name]` (the caller escapes it; `json_script` helps).

Text the page's JavaScript shows is passed in a `<script type="application/json">` block as a
dict msgid → translation (`catalog`), so all user-facing words come from the .po files.
`make locales` finds the templates' words with `extract_templates` (see babel.cfg) and the
JavaScript's words where they are listed in Python, marked with `N_`.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from bot.i18n import I18n

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"
_MSG = re.compile(r"\{\{_ (.+?) \}\}", re.S)
_VAR = re.compile(r"\{\{ (\w+) \}\}")


def json_script(data: Any) -> str:
    """JSON that is safe inside a <script> element."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def extract_templates(
    fileobj: IO[bytes], keywords: Any, comment_tags: Any, options: Any
) -> Iterator[tuple[int, str, str, list[str]]]:
    """Babel extraction method for the `{{_ text }}` of a template."""
    source = fileobj.read().decode("utf-8")
    for m in _MSG.finditer(source):
        yield source.count("\n", 0, m.start()) + 1, "_", m.group(1), []


class Pages:
    def __init__(self, i18n: I18n, templates: Path = TEMPLATES) -> None:
        self.i18n = i18n
        self.templates = templates
        self._cache: dict[str, str] = {}

    def lang(self, requested: str | None) -> str:
        return self.i18n.lang(requested) if requested in ("id", "en") else self.i18n.default

    def catalog(self, lang: str, msgids: list[str]) -> dict[str, str]:
        return {m: self.i18n.gettext(lang, m) for m in msgids}

    def render(self, name: str, lang: str, context: dict[str, str]) -> str:
        source = self._cache.get(name)
        if source is None:
            source = (self.templates / name).read_text(encoding="utf-8")
            self._cache[name] = source

        def msg(m: re.Match[str]) -> str:
            return html.escape(self.i18n.gettext(lang, m.group(1)))

        def var(m: re.Match[str]) -> str:
            return context.get(m.group(1), "")

        return _VAR.sub(var, _MSG.sub(msg, source))
