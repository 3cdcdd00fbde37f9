"""
Every page in a real browser at phone (390 px) and desktop (1280 px) widths:
no JavaScript errors, nothing wider than the phone screen, and a screenshot
of each in artifacts/screenshots/ to look at.
"""

import pytest

from billing.models import Plan
from tests.factories import OrderBumpFactory, PlanFactory, SubscriptionFactory
from tests.site.art import svg_data_url

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE, DESKTOP = 390, 1280


@pytest.fixture
def demo_site(make_creator, make_post):
    names = ["Luna Ribeiro", "Marina Costa", "Bela Santos", "Júlia Prado", "Carol Lima", "Duda Alves"]
    creators = []
    for i, name in enumerate(names):
        creator = make_creator(
            name=name,
            slug=name.lower().replace(" ", "-").replace("ú", "u"),
            description="Fotógrafa e criadora de conteúdo. Ensaios novos toda semana.",
            is_featured=i < 4,
            source_thumbnail_url=svg_data_url(330 + i * 25, label=name),
            source_icon_url=svg_data_url(340 + i * 25, width=200, height=200),
            source_banner_url=svg_data_url(350 + i * 25, width=1600, height=500),
        )
        for j in range(3):
            make_post(creator, title=f"Ensaio {j + 1}", images=3, videos=1 if j == 0 else 0)
        creators.append(creator)
    PlanFactory(name="Mensal", price_cents=2990, duration_days=30, display_order=1,
                benefits=[{"title": "Acesso a todos os criadores"}, {"title": "Fotos e vídeos em alta qualidade"}, {"title": "Cancele quando quiser"}])
    PlanFactory(name="Trimestral", price_cents=7990, duration_days=90, display_order=2, card_style="featured",
                benefits=[{"title": "Tudo do mensal", "subtitle": "Economize 11%"}, {"title": "Conteúdo antecipado"}])
    PlanFactory(name="Anual", price_cents=23990, duration_days=365, display_order=3, card_style="premium",
                benefits=[{"title": "Tudo do trimestral", "subtitle": "Economize 33%"}, {"title": "Suporte prioritário"}])
    OrderBumpFactory(name="Pack de boas-vindas", description="20 fotos exclusivas em alta resolução", price_cents=990)
    return creators


def _check_page(browser, path, label):
    browser.get(path)
    browser.wait_for("main")
    for width in (PHONE, DESKTOP):
        browser.resize(width)
        overflow = browser.driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, f"{path} is {overflow}px wider than a {width}px screen"
        browser.full_screenshot(f"{label}-{width}", width)
    errors = browser.js_errors()
    if label == "not-found":  # the page itself answers 404, on purpose
        errors = [e for e in errors if "status of 404" not in e["message"]]
    assert errors == []


def test_every_page_fits_a_phone_and_a_desktop(browser, demo_site):
    creator = demo_site[0]
    post = creator.posts.first()
    plan = Plan.objects.get(name="Trimestral")

    for path, label in [
        ("/", "home"),
        ("/models/", "creators"),
        (f"/models/{creator.slug}/", "creator"),
        (f"/posts/{post.pk}/", "post-locked"),
        ("/plans/", "plans"),
        (f"/checkout/{plan.pk}/", "checkout"),
        ("/accounts/login/", "login"),
        ("/accounts/signup/", "signup"),
        ("/nao-existe/", "not-found"),
    ]:
        _check_page(browser, path, label)


def test_subscriber_pages_fit_a_phone_and_a_desktop(browser, demo_site, client, live_media):
    live_media()
    from datetime import timedelta

    from django.utils import timezone

    from billing.models import Checkout
    from tests.factories import CheckoutFactory

    mensal = Plan.objects.get(name="Mensal")
    subscription = SubscriptionFactory(plan=mensal, end_date=timezone.now() + timedelta(days=2))
    for days_ago in (62, 32, 28):
        CheckoutFactory(user=subscription.user, plan=mensal, subscription=subscription, status=Checkout.Status.PAID,
                        created_at=timezone.now() - timedelta(days=days_ago))
    CheckoutFactory(user=subscription.user, plan=mensal, subscription=subscription, purpose=Checkout.Purpose.RENEWAL)
    client.force_login(subscription.user)
    browser.get("/")
    browser.driver.add_cookie({"name": "sessionid", "value": client.cookies["sessionid"].value, "path": "/"})

    post = demo_site[1].posts.first()
    for path, label in [
        (f"/posts/{post.pk}/", "post-unlocked"),
        (f"/models/{demo_site[1].slug}/", "creator-subscriber"),
        ("/account/", "account"),
    ]:
        _check_page(browser, path, label)
