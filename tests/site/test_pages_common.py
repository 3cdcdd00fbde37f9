"""What every site page shares: the language switch, and markup the CSP accepts."""

import re

import pytest

from tests.factories import PlanFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def test_pages_speak_portuguese_first_and_english_on_request(client, plan):
    assert "Escolha seu plano" in client.get("/plans/").content.decode()

    client.post("/i18n/setlang/", {"language": "en", "next": "/plans/"})

    assert "Choose your plan" in client.get("/plans/").content.decode()


def test_pages_have_no_inline_script_or_handler(client, make_creator, make_post):
    # The Content-Security-Policy allows scripts from our origin only.
    post = make_post(make_creator(slug="ana"))
    plan = PlanFactory()
    user = SubscriptionFactory().user
    pages = ["/", "/models/", "/models/ana/", f"/posts/{post.pk}/", "/plans/", f"/checkout/{plan.pk}/", "/accounts/login/"]
    bodies = [client.get(path).content.decode() for path in pages]
    client.force_login(user)
    bodies.append(client.get("/account/").content.decode())

    for path, body in zip(pages + ["/account/"], bodies, strict=True):
        inline_scripts = [s for s in re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", body) if "application/json" not in s]
        assert inline_scripts == [], path
        assert not re.search(r"\son[a-z]+=", body), path
        assert not re.search(r'\sstyle="', body), path
