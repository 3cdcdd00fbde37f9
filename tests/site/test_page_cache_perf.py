"""
Anonymous creator and post pages come from a cache that keeps
languages and login states apart; subscribers' pages stay their own.
"""

import re

import pytest
from django.core.cache import cache
from django.test import Client

from catalog.page_cache import VERSION_KEY
from catalog.services.publishing import set_posts_status
from tests.factories import SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _past_the_age_gate(client):
    """Creator and post pages sit behind the 18+ gate (tests/site/test_rights_age.py pins it)."""
    client.post("/accounts/age/gate/", {"next": "/"})


def test_an_anonymous_creator_page_is_served_from_the_cache_without_a_query(
    client, make_creator, make_post, django_assert_num_queries
):
    creator = make_creator(slug="luna", name="Luna Cache")
    make_post(creator, title="Primeiro ensaio")
    first = client.get("/models/luna/")

    with django_assert_num_queries(0):
        again = client.get("/models/luna/")

    assert first.status_code == again.status_code == 200
    assert "Primeiro ensaio" in again.content.decode()


def test_a_cached_page_carries_each_visitors_own_csrf_token(
    client, make_creator, make_post
):
    post = make_post(make_creator())
    client.get(f"/posts/{post.pk}/")  # fills the cache
    other = Client()

    response = other.get(f"/posts/{post.pk}/")

    body = response.content.decode()
    assert "csrf-token-of-the-visitor" not in body
    token = body.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    assert len(token) == 64 and other.cookies["csrftoken"].value
    # The language switch posts with it: the token is the visitor's, so it passes the CSRF check.
    other.enforce_csrf_checks = True
    assert (
        other.post(
            "/i18n/setlang/",
            {"language": "en", "next": "/", "csrfmiddlewaretoken": token},
        ).status_code
        == 302
    )


def test_each_language_gets_its_own_cached_page(client, make_creator, make_post):
    post = make_post(make_creator())
    path = f"/posts/{post.pk}/"
    client.get(path, HTTP_ACCEPT_LANGUAGE="pt-BR")  # cached in Portuguese

    english = client.get(path, HTTP_ACCEPT_LANGUAGE="en").content.decode().lower()
    portuguese = client.get(path, HTTP_ACCEPT_LANGUAGE="pt-BR").content.decode().lower()

    assert '<html lang="en"' in english
    assert '<html lang="pt-br"' in portuguese


def test_a_subscriber_never_gets_the_anonymous_cached_page(
    client, subscriber, catalog_storage, make_creator, make_post
):
    post = make_post(make_creator(), images=2)
    locked = client.get(f"/posts/{post.pk}/").content.decode()  # cached, locked
    client.force_login(subscriber)

    response = client.get(f"/posts/{post.pk}/")

    assert 'data-testid="locked"' in locked
    assert (
        response.context["locked"] is False
        and "X-Amz-Signature" in response.content.decode()
    )


def test_a_publish_change_is_seen_by_anonymous_visitors_at_once(
    client, make_creator, make_post, django_capture_on_commit_callbacks
):
    creator = make_creator(slug="bia")
    post = make_post(creator, title="Vai sumir")
    assert "Vai sumir" in client.get("/models/bia/").content.decode()
    version = cache.get(VERSION_KEY)

    with django_capture_on_commit_callbacks(execute=True):
        set_posts_status(post_ids=[post.pk], status="hidden")

    assert cache.get(VERSION_KEY) != version
    assert "Vai sumir" not in client.get("/models/bia/").content.decode()


def test_a_member_without_access_gets_the_cached_page_with_the_member_menu_and_their_own_token(
    client, user, make_creator, make_post, django_assert_max_num_queries
):
    make_post(make_creator(slug="luna"), title="Primeiro ensaio")
    guest_page = client.get("/").content.decode()  # the guest's copy, kept apart
    client.force_login(user)
    client.get("/")  # fills the member's copy
    other = Client()
    other.force_login(UserFactory())
    other.get("/")

    # The session, the user and the access check; nothing of the page itself.
    with django_assert_max_num_queries(4):
        body = client.get("/").content.decode()

    assert "Primeiro ensaio" in body and "/account/" in body and "/account/" not in guest_page
    assert "csrf-token-of-the-visitor" not in body
    assert set(CSRF_VALUE.findall(body)).isdisjoint(CSRF_VALUE.findall(other.get("/").content.decode()))
    # The log-out form posts with the member's own token: it passes the CSRF check.
    client.enforce_csrf_checks = True
    logout = client.post("/accounts/logout/", {"csrfmiddlewaretoken": CSRF_VALUE.findall(body)[0]})
    assert logout.status_code == 302 and "_auth_user_id" not in client.session


def test_a_member_who_gets_access_sees_the_media_at_once_not_the_cached_locked_page(
    client, user, catalog_storage, make_creator, make_post
):
    post = make_post(make_creator(), images=2)
    client.force_login(user)
    locked = client.get(f"/posts/{post.pk}/").content.decode()  # cached for members without access

    SubscriptionFactory(user=user)  # paid: no version bump, nothing else changes
    unlocked = client.get(f"/posts/{post.pk}/")

    assert 'data-testid="locked"' in locked
    assert unlocked.context["locked"] is False and "X-Amz-Signature" in unlocked.content.decode()


def test_the_home_page_is_cached_for_guests_and_sees_a_publish_at_once(
    client, make_creator, make_post, django_assert_num_queries, django_capture_on_commit_callbacks
):
    post = make_post(make_creator(), title="Novidade da semana")
    assert "Novidade da semana" in client.get("/").content.decode()

    with django_assert_num_queries(0):
        assert "Novidade da semana" in client.get("/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        set_posts_status(post_ids=[post.pk], status="hidden")

    assert "Novidade da semana" not in client.get("/").content.decode()


CSRF_VALUE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
