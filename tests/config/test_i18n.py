"""The pt-BR catalogues are complete: every string the project shows has a translation."""

from pathlib import Path

import django_celery_beat
import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
CATALOGUES = sorted(p for p in ROOT.glob("*/locale/pt_BR/LC_MESSAGES/django.po") if ".venv" not in p.parts) + sorted(
    ROOT.glob("locale/pt_BR/LC_MESSAGES/django.po")
) + [ROOT / "locale" / "third_party" / "pt_BR" / "LC_MESSAGES" / "django.po"]


def test_there_are_pt_br_catalogues():
    assert CATALOGUES


@pytest.mark.parametrize("path", CATALOGUES, ids=lambda p: str(p.relative_to(ROOT)))
def test_pt_br_catalogue_is_complete(path):
    with path.open("rb") as fh:
        catalog = read_po(fh)
    missing = [
        message.id
        for message in catalog
        if message.id and (message.fuzzy or not (message.string if isinstance(message.string, str) else all(message.string)))
    ]

    assert not catalog.fuzzy, f"{path}: the header is marked fuzzy, so the catalogue would not be compiled"
    assert missing == []


def test_our_catalogue_translates_every_string_of_the_installed_django_celery_beat():
    # It ships no pt-BR (locale/third_party): after an upgrade, a new string would show in English.
    keywords = {"_": None, "gettext": None, "gettext_lazy": None}
    strings = {
        message
        for source in Path(django_celery_beat.__file__).parent.glob("*.py")
        for _, message, _, _ in extract_from_file("python", source, keywords=keywords)
    }
    with (ROOT / "locale" / "third_party" / "pt_BR" / "LC_MESSAGES" / "django.po").open("rb") as fh:
        translated = {message.id for message in read_po(fh) if message.id and message.string}

    assert sorted(strings - translated) == []
