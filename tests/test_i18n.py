"""Every user-facing message has a natural Indonesian translation, and the catalog is current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

from bot.i18n import I18n

ROOT = Path(__file__).resolve().parent.parent


def load(path: Path):  # type: ignore[no-untyped-def]
    with path.open("rb") as f:
        return read_po(f)


def test_every_message_has_an_indonesian_translation_and_none_is_fuzzy() -> None:
    catalog = load(ROOT / "locales/id/LC_MESSAGES/messages.po")
    missing = [m.id for m in catalog if m.id and not m.string]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert not missing, f"untranslated: {missing}"
    assert not fuzzy, f"fuzzy: {fuzzy}"


def test_catalogs_cover_every_msgid_in_the_code(tmp_path: Path) -> None:
    pot = tmp_path / "now.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_",
            "-k",
            "gettext",
            "-k",
            "N_",
            "-o",
            str(pot),
            "--no-location",
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    in_code = {m.id for m in load(pot) if m.id}
    for lang in ("id", "en"):
        in_po = {m.id for m in load(ROOT / f"locales/{lang}/LC_MESSAGES/messages.po") if m.id}
        assert in_code <= in_po, f"{lang}: run `make locales`; missing {sorted(in_code - in_po)}"


def test_placeholders_survive_translation() -> None:
    import re

    catalog = load(ROOT / "locales/id/LC_MESSAGES/messages.po")
    for m in catalog:
        if m.id and m.string:
            assert set(re.findall(r"\{\w+\}", m.id)) == set(re.findall(r"\{\w+\}", m.string)), m.id


def test_indonesian_is_the_default() -> None:
    i18n = I18n("id")
    assert i18n.gettext(None, "New") == "Baru"
    assert i18n.gettext("en", "New") == "New"
    assert i18n.gettext("fr", "New") == "Baru"
