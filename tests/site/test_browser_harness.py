"""The browser tests' harness: skip without Chromium locally, fail under CI."""

import pytest

from tests.site import conftest


def test_it_skips_saying_why_when_chromium_is_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(conftest, "_find", lambda *names: None)
    monkeypatch.setattr(conftest, "IS_CI", False)

    with pytest.raises(pytest.skip.Exception, match="chromium"):
        conftest._start_chromium(tmp_path, 390, 900)


def test_it_fails_under_ci_when_chromium_is_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(conftest, "_find", lambda *names: None)
    monkeypatch.setattr(conftest, "IS_CI", True)

    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        conftest._start_chromium(tmp_path, 390, 900)
