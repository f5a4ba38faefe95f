"""Languages: the choice of a page's language, and the catalogues (complete, current, consistent)."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from authserver import i18n
from authserver.i18n import Text

ROOT = Path(__file__).resolve().parent.parent
LOCALE_DIR = ROOT / "authserver" / "locale"
TRANSLATED = [code for code in i18n.LOCALES if code != i18n.DEFAULT]


@pytest.mark.parametrize(("given", "expected"), [
    ({}, "en"),
    ({"default": "de"}, "de"),
    ({"accept_language": "de-AT,de;q=0.9,en;q=0.8"}, "de"),
    ({"accept_language": "es, de;q=0.5, fr;q=0.8"}, "fr"),  # weights, not order; es has no catalogue
    ({"accept_language": "fr;q=0, de;q=0.1"}, "de"),  # q=0: "not this"
    ({"accept_language": "*, fr;q=0.2"}, "fr"),
    ({"accept_language": "fr;q=2, de;q=x, zz"}, "en"),  # malformed weights are ignored
    ({"cookie": "fr", "accept_language": "de"}, "fr"),
    ({"cookie": "xx", "accept_language": "de"}, "de"),
    ({"ui_locales": "es de-CH fr", "cookie": "fr", "accept_language": "fr"}, "de"),  # OIDC Core §3.1.2.1
    ({"ui_locales": "es it", "cookie": "fr"}, "fr"),
    ({"chosen": "fr", "ui_locales": "de", "cookie": "de"}, "fr"),  # the switcher during this sign-in
    ({"ui_locales": "<script> de"}, "de"),
])
def test_negotiation_order(given, expected):
    assert i18n.negotiate(**given) == expected


def test_text_is_english_until_shown():
    text = Text("Password must be at least %(count)d characters long.", count=8)
    assert text == "Password must be at least 8 characters long." and isinstance(text, str)
    assert i18n.translate(text, "de") == "Das Passwort muss mindestens 8 Zeichen lang sein."
    assert i18n.translate("Invalid username or password.", "fr") == "Nom d’utilisateur ou mot de passe incorrect."
    assert i18n.translate("not a message id", "fr") == "not a message id"


def test_dates_in_the_readers_language():
    when = dt.datetime(2026, 11, 30, 14, 5, tzinfo=dt.UTC)
    assert i18n.datetime(when, "en") == "Nov 30, 2026, 2:05:00\u202fPM UTC"
    assert i18n.datetime(when, "fr") == "30 nov. 2026, 14:05:00 UTC"
    assert i18n.datetime(when, "de") == "30.11.2026, 14:05:00 UTC"
    earlier = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3, minutes=1)
    assert i18n.ago(earlier, "en") == "3 hours ago"
    assert i18n.ago(earlier, "fr") == "il y a 3 heures"
    assert i18n.ago(earlier, "de") == "vor 3 Stunden"


def _catalog(path: Path, locale: str | None = None):
    with path.open("rb") as fh:
        return read_po(fh, locale=locale)


def _ids(catalog) -> set[object]:
    return {m.id for m in catalog if m.id}


def _placeholders(text: str) -> list[str]:
    return sorted(re.findall(r"%\([a-z_]+\)[sd]|%%", text))


@pytest.mark.parametrize("locale", TRANSLATED)
def test_catalogue_is_complete(locale):
    """Every message of the template is translated, none fuzzy or obsolete, with the same
    placeholders (a missing one would raise or show a raw ``%(name)s``)."""
    template = _catalog(LOCALE_DIR / "messages.pot")
    catalog = _catalog(LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po", locale)
    assert _ids(catalog) == _ids(template)
    assert not catalog.obsolete
    for message in catalog:
        if not message.id:
            continue
        assert "fuzzy" not in message.flags, message.id
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"untranslated in {locale}: {message.id!r}"
        for string in strings:
            assert _placeholders(string) == _placeholders(ids[-1]), (locale, message.id, string)
    assert not list(catalog.check())


def test_template_is_current(tmp_path):
    """The committed messages.pot holds exactly what the code and templates mark today
    (``scripts/i18n`` after changing a text)."""
    out = tmp_path / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "-q", "extract", "-F", "babel.cfg", "-k", "N_",
                    "--no-location", "-o", str(out), "."], cwd=ROOT, check=True)
    assert _ids(_catalog(out)) == _ids(_catalog(LOCALE_DIR / "messages.pot"))
