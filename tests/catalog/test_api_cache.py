"""
The subscribers' posts page served from the cache (catalog/api_cache.py):
the same bytes for every viewer with access, never for anyone else, stale
at once when the catalog changes, and only within its signing window.
"""

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import Subscription
from catalog.models import Creator, Post
from catalog.page_cache import VERSION_KEY
from catalog.services.publishing import set_creators_status, set_posts_status
from tests.catalog.factories import CreatorFactory, MediaFactory, PostFactory
from tests.factories import SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db

WINDOW = 1800  # SIGNED_URL_TTL 3600 (tests/catalog/conftest.py) → windows of 1800 s
START = datetime.fromtimestamp(1_800_000_000 - 1_800_000_000 % WINDOW, tz=UTC)  # a window's start


def _creator(posts=3, media=2):
    creator = CreatorFactory()
    for _ in range(posts):
        post = PostFactory(creator=creator)
        for _ in range(media):
            MediaFactory(post=post)
    return creator


def _subscriber_client(api_client, **subscription):
    user = SubscriptionFactory(**subscription).user
    api_client.force_login(user)
    return api_client


def _warm(client, url):
    """The first request after a cache flush sets the catalog's version, the next stores the page."""
    for _ in range(2):
        assert client.get(url).status_code == 200
    assert cache.get(VERSION_KEY) is not None


def _catalog_queries(captured):
    return [q["sql"] for q in captured if "catalog_" in q["sql"]]


def _amz_date(body):
    url = body["results"][0]["media"][0]["url"]
    return parse_qs(urlsplit(url).query)["X-Amz-Date"][0]


def test_every_subscriber_gets_the_same_bytes_from_the_cache(api_client, client):
    creator = _creator()
    url = f"/api/models/{creator.slug}/posts"
    first = _subscriber_client(api_client).get(url)
    _warm(api_client, url)

    client.force_login(SubscriptionFactory().user)  # another subscriber
    with CaptureQueriesContext(connection) as queries:
        again = client.get(url)

    assert again.status_code == 200 and again["Content-Type"] == "application/json"
    assert again.content == first.content  # byte for byte what the database path answered
    assert _catalog_queries(queries.captured_queries) == []  # the page came from the cache
    body = again.json()
    assert all(row["locked"] is False and len(row["media"]) == 2 for row in body["results"])
    assert "X-Amz-Signature=" in body["results"][0]["media"][0]["url"]


@pytest.mark.parametrize("who", ["anonymous", "no subscription", "age not confirmed", "inactive account"])
def test_viewers_without_access_never_get_the_cached_page(api_client, client, who):
    creator = _creator()
    url = f"/api/models/{creator.slug}/posts"
    _warm(_subscriber_client(api_client), url)
    if who == "no subscription":
        client.force_login(UserFactory())
    elif who == "age not confirmed":
        client.force_login(SubscriptionFactory(user=UserFactory(age_confirmed_at=None)).user)
    elif who == "inactive account":
        user = SubscriptionFactory().user
        client.force_login(user)
        user.__class__.objects.filter(pk=user.pk).update(is_active=False)

    body = client.get(url).json()

    raw = json.dumps(body)
    assert all(row["locked"] is True for row in body["results"])
    assert "X-Amz" not in raw and "wl-bucket" not in raw


@pytest.mark.parametrize(
    "change",
    [
        {"status": Subscription.Status.REFUNDED},
        {"status": Subscription.Status.EXPIRED},
        # Past the period and the grace days.
        {"start_date": timezone.now() - timedelta(days=60), "end_date": timezone.now() - timedelta(days=30)},
    ],
    ids=["refunded", "expired", "period-over"],
)
def test_a_subscription_that_ends_loses_the_cached_page_on_the_next_request(api_client, change):
    creator = _creator()
    url = f"/api/models/{creator.slug}/posts"
    client = _subscriber_client(api_client)
    _warm(client, url)
    assert client.get(url).json()["results"][0]["locked"] is False

    # A bare UPDATE, no hook, no cache write: access is asked of the database on every request.
    Subscription.objects.filter(user_id=client.session["_auth_user_id"]).update(**change)

    body = client.get(url).json()
    assert all(row["locked"] is True for row in body["results"]) and "X-Amz" not in json.dumps(body)


def test_a_subscription_ending_by_the_clock_loses_the_cached_page(api_client):
    creator = _creator()
    url = f"/api/models/{creator.slug}/posts"
    with time_machine.travel(START + timedelta(seconds=10), tick=False):
        client = _subscriber_client(
            api_client,
            status=Subscription.Status.ACTIVE,
            cancel_at_period_end=True,  # no grace days
            end_date=START + timedelta(seconds=60),
        )
        _warm(client, url)
    with time_machine.travel(START + timedelta(seconds=61), tick=False):  # same signing window
        body = client.get(url).json()

    assert all(row["locked"] is True for row in body["results"])


def test_a_hidden_post_leaves_the_cached_page_at_once(api_client, django_capture_on_commit_callbacks):
    creator = _creator()
    url = f"/api/models/{creator.slug}/posts"
    client = _subscriber_client(api_client)
    _warm(client, url)
    hidden = creator.posts.order_by("-published_at", "-id").first()

    with django_capture_on_commit_callbacks(execute=True):
        set_posts_status(post_ids=[hidden.pk], status=Post.Status.HIDDEN)  # the admin's "hide" action

    body = client.get(url).json()
    assert hidden.pk not in [row["id"] for row in body["results"]] and body["count"] == 2


def test_a_hidden_creator_is_a_404_at_once(api_client, django_capture_on_commit_callbacks):
    creator = _creator()
    url = f"/api/models/{creator.slug}/posts"
    client = _subscriber_client(api_client)
    _warm(client, url)

    with django_capture_on_commit_callbacks(execute=True):
        set_creators_status(creator_ids=[creator.pk], status=Creator.Status.HIDDEN)

    assert client.get(url).status_code == 404


def test_a_new_post_shows_at_once(api_client, django_capture_on_commit_callbacks):
    creator = _creator()
    url = f"/api/models/{creator.slug}/posts"
    client = _subscriber_client(api_client)
    _warm(client, url)

    with django_capture_on_commit_callbacks(execute=True):
        post = PostFactory(creator=creator, published_at=timezone.now())  # refresh_post_counts, as the services do

    body = client.get(url).json()
    assert body["results"][0]["id"] == post.pk and body["count"] == 4


def test_admin_edits_of_creators_and_posts_make_the_cached_page_stale(
    api_client, admin_client, django_capture_on_commit_callbacks
):
    creator = _creator(posts=1, media=1)
    post = creator.posts.get()
    url = f"/api/models/{creator.slug}/posts"
    client = _subscriber_client(api_client)
    _warm(client, url)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            f"/admin/catalog/post/{post.pk}/change/",
            {
                "creator": creator.pk,
                "title": "Título novo",
                "published_at_0": (timezone.localdate() - timedelta(days=30)).isoformat(),
                "published_at_1": "12:00:00",
                "status": Post.Status.PUBLISHED,
                "media-TOTAL_FORMS": "1",
                "media-INITIAL_FORMS": "1",
                "media-MIN_NUM_FORMS": "0",
                "media-MAX_NUM_FORMS": "1000",
                "media-0-id": str(post.media.get().pk),
                "media-0-post": str(post.pk),
                "media-0-position": "0",
                "media-0-type": "image",
                "media-0-DELETE": "on",  # and its one media item removed
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    row = client.get(url).json()["results"][0]
    assert row["title"] == "Título novo" and row["media"] == []

    _warm(client, url)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            f"/admin/catalog/creator/{creator.pk}/change/",
            {
                "name": creator.name,
                "slug": "novo-slug",
                "description": "",
                "status": Creator.Status.PUBLISHED,
                "featured_order": "0",
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert client.get(url).status_code == 404


def test_the_cached_page_never_outlives_its_signing_window(api_client):
    creator = _creator()
    url = f"/api/models/{creator.slug}/posts"
    with time_machine.travel(START + timedelta(seconds=5), tick=False):
        client = _subscriber_client(api_client)
        _warm(client, url)
    # At the window's last second the cached page is still served: signed at
    # the window's start for 3600 s, its URLs have 1801 s (≥ TTL/2) left.
    with time_machine.travel(START + timedelta(seconds=WINDOW - 1), tick=False), CaptureQueriesContext(connection) as queries:
        late = client.get(url).json()
    assert _catalog_queries(queries.captured_queries) == []
    assert _amz_date(late) == START.strftime("%Y%m%dT%H%M%SZ")
    # The next window gets URLs signed at its own start, not the cached ones.
    with time_machine.travel(START + timedelta(seconds=WINDOW), tick=False):
        nxt = client.get(url).json()
    assert _amz_date(nxt) == (START + timedelta(seconds=WINDOW)).strftime("%Y%m%dT%H%M%SZ")


def test_a_page_built_at_a_windows_very_end_is_not_stored(api_client, monkeypatch):
    creator = _creator()
    url = f"/api/models/{creator.slug}/posts"
    with time_machine.travel(START + timedelta(seconds=WINDOW - 0.5), tick=False):
        client = _subscriber_client(api_client)
        stored = []
        monkeypatch.setattr("catalog.api_cache.cache.set", lambda *args, **kwargs: stored.append(args))
        for _ in range(3):
            assert client.get(url).status_code == 200
    assert stored == []


def test_entries_expire_with_their_window(api_client, monkeypatch):
    creator = _creator()
    url = f"/api/models/{creator.slug}/posts"
    timeouts = []
    real_set = cache.set

    def spy(key, value, timeout=None, **kwargs):
        if key.startswith("catalog:posts-page:"):
            timeouts.append(timeout)
        return real_set(key, value, timeout, **kwargs)

    monkeypatch.setattr("catalog.api_cache.cache.set", spy)
    with time_machine.travel(START + timedelta(seconds=700), tick=False):
        _warm(_subscriber_client(api_client), url)

    assert timeouts == [WINDOW - 700]


def test_hosts_and_pages_are_cached_apart(api_client, settings):
    settings.ALLOWED_HOSTS = ["testserver", "other.test"]
    creator = _creator(posts=21, media=1)
    url = f"/api/models/{creator.slug}/posts"
    client = _subscriber_client(api_client)
    _warm(client, url)
    _warm(client, url + "?page=2")

    assert client.get(url).json()["next"] == f"http://testserver{url}?page=2"
    assert client.get(url, HTTP_HOST="other.test").json()["next"] == f"http://other.test{url}?page=2"
    second = client.get(url + "?page=2").json()
    assert second["next"] is None and len(second["results"]) == 1


def test_other_query_strings_are_answered_but_not_cached(api_client, monkeypatch):
    creator = _creator()
    url = f"/api/models/{creator.slug}/posts?page=1&utm_source=x"
    client = _subscriber_client(api_client)
    stored = []
    monkeypatch.setattr("catalog.api_cache.cache.set", lambda *args, **kwargs: stored.append(args))

    for _ in range(3):
        assert client.get(url).json()["results"][0]["locked"] is False
    assert stored == []


def test_without_a_catalog_version_nothing_is_served_from_the_cache(api_client):
    creator = _creator()
    url = f"/api/models/{creator.slug}/posts"
    client = _subscriber_client(api_client)
    _warm(client, url)
    cache.delete(VERSION_KEY)  # evicted, or Redis flushed: entries stored before cannot be trusted

    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    assert len(_catalog_queries(queries.captured_queries)) == 1


def test_a_cached_hit_makes_the_same_few_queries_whatever_the_data(api_client, django_assert_max_num_queries):
    creator = CreatorFactory()
    MediaFactory(post=PostFactory(creator=creator))
    url = f"/api/models/{creator.slug}/posts"
    client = _subscriber_client(api_client)
    _warm(client, url)
    # Session (from the cache with Redis, else the database) + user + access check; no catalog query.
    with django_assert_max_num_queries(3) as one:
        assert client.get(url).status_code == 200
    for _ in range(199):
        post = PostFactory(creator=creator)
        MediaFactory(post=post)
        MediaFactory(post=post)
    other = CreatorFactory()
    for _ in range(30):
        MediaFactory(post=PostFactory(creator=other))
    cache.delete(VERSION_KEY)
    _warm(client, url)
    with django_assert_max_num_queries(3) as many:
        body = client.get(url).json()

    assert body["count"] == 200 and len(body["results"]) == 20
    assert len(one.captured_queries) == len(many.captured_queries)
    assert _catalog_queries(many.captured_queries) == []
