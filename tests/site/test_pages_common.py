"""What every site page shares: the language switch, markup the CSP accepts, a description and the icons."""

import re

import pytest

from billing.models import Checkout
from tests.factories import CheckoutFactory, PlanFactory, SubscriptionFactory

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


def test_pages_have_a_description_of_their_own_and_the_icons(client, make_creator, make_post):
    # Search results show the description; `make audit-pages` (Lighthouse's SEO) fails the pages without one.
    creator = make_creator(slug="ana", name="Ana Lua", description="")
    post = make_post(creator, title="Ensaio na praia")
    plan = PlanFactory(name="Trimestral")
    user = SubscriptionFactory().user
    client.post("/accounts/age/gate/", {"next": "/"})
    pages = ["/", "/models/", "/models/ana/", f"/posts/{post.pk}/", "/plans/", f"/checkout/{plan.pk}/", "/accounts/login/"]
    bodies = [client.get(path).content.decode() for path in pages]
    client.force_login(user)
    bodies.append(client.get("/account/").content.decode())

    descriptions = {}
    for path, body in zip(pages + ["/account/"], bodies, strict=True):
        found = re.findall(r'<meta name="description" content="([^"]{20,})">', body)
        assert len(found) == 1, path
        descriptions[path] = found[0]
        assert re.search(r'<link rel="icon" href="[^"]+\.svg"', body), path
        assert re.search(r'<link rel="apple-touch-icon" href="[^"]+\.png"', body), path
    assert "Ana Lua" in descriptions["/models/ana/"]
    assert "Ensaio na praia" in descriptions[f"/posts/{post.pk}/"]
    assert "Trimestral" in descriptions[f"/checkout/{plan.pk}/"]
    assert len({descriptions[p] for p in ("/", "/models/", "/plans/", "/account/")}) == 4


def test_account_history_scrolls_under_the_keyboard_too(client):
    # A history wider than its column scrolls sideways: a keyboard can do it only if the scroller takes focus
    # (axe's scrollable-region-focusable, serious, when no row has a link to focus instead).
    subscription = SubscriptionFactory()
    CheckoutFactory(user=subscription.user, plan=subscription.plan, status=Checkout.Status.FAILED)
    client.force_login(subscription.user)

    body = client.get("/account/").content.decode()

    assert re.search(r'<div class="table-wrap" role="group" aria-labelledby="history-title" tabindex="0">', body)
