"""gettext catalogs (Babel) from `locales/`.

msgids are English; `locales/id/LC_MESSAGES/messages.po` gives the Indonesian text and
`locales/en/...` may refine English.  Compile with `pybabel compile -d locales -D messages`
(the Makefile does it on install and test; `load_catalogs` also compiles missing .mo files).
"""

from __future__ import annotations

import gettext
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALES = ("id", "en")
DOMAIN = "messages"
LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"


def compile_catalogs(locales_dir: Path = LOCALES_DIR) -> None:
    """Compile each .po into .mo when the .mo is missing or older."""
    for lang in LOCALES:
        po = locales_dir / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
        mo = po.with_suffix(".mo")
        if po.exists() and (not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime):
            with po.open("rb") as f:
                catalog = read_po(f, locale=lang)
            with mo.open("wb") as f:
                write_mo(f, catalog)


class I18n:
    """Holds one translator per supported language; pick with `for_lang`."""

    def __init__(self, default: str = "id", locales_dir: Path = LOCALES_DIR) -> None:
        compile_catalogs(locales_dir)
        self.default = default if default in LOCALES else "id"
        self._tr: dict[str, gettext.NullTranslations] = {}
        for lang in LOCALES:
            tr = Translations.load(str(locales_dir), [lang], domain=DOMAIN)
            self._tr[lang] = tr

    def lang(self, code: str | None) -> str:
        code = (code or "").split("-")[0].lower()
        return code if code in LOCALES else self.default

    def for_lang(self, code: str | None) -> gettext.NullTranslations:
        return self._tr[self.lang(code)]

    def gettext(self, code: str | None, msgid: str) -> str:
        return self.for_lang(code).gettext(msgid)
