import json
from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import Subscription
from catalog.models import Creator, Post
from tests.catalog.factories import CreatorFactory, MediaFactory, PostFactory, UploadedMediaFactory
from tests.factories import SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db


def _creator_with_posts(posts=3, media=2, **kwargs):
    creator = CreatorFactory(**kwargs)
    for _ in range(posts):
        post = PostFactory(creator=creator)
        for _ in range(media):
            MediaFactory(post=post)
    creator.refresh_from_db()
    return creator


# ---------------------------------------------------------------------------
# GET /api/models
# ---------------------------------------------------------------------------
def test_models_lists_published_creators_most_posts_first(api_client):
    few = _creator_with_posts(posts=1, media=0, name="Few")
    many = _creator_with_posts(posts=3, media=0, name="Many")
    _creator_with_posts(posts=5, media=0, name="Hidden", status=Creator.Status.HIDDEN)

    body = api_client.get("/api/models").json()

    assert body["count"] == 2
    assert [row["slug"] for row in body["results"]] == [many.slug, few.slug]
    assert body["results"][0] == {
        "name": "Many",
        "slug": many.slug,
        "icon_url": many.source_icon_url,
        "banner_url": many.source_banner_url,
        "thumbnail_url": many.source_thumbnail_url,
        "post_count": 3,
    }


def test_models_is_paginated_by_20(api_client):
    for n in range(25):
        CreatorFactory(post_count=n)

    first = api_client.get("/api/models").json()
    second = api_client.get("/api/models", {"page": 2}).json()

    assert first["count"] == 25 and len(first["results"]) == 20 and first["previous"] is None
    assert first["next"].endswith("/api/models?page=2")
    assert [r["post_count"] for r in first["results"]] == list(range(24, 4, -1))
    assert [r["post_count"] for r in second["results"]] == [4, 3, 2, 1, 0] and second["next"] is None


@pytest.mark.parametrize("page", ["3", "0", "abc", "290000000000000000000000000000000", "-1"])
def test_a_page_out_of_range_even_past_a_bigint_offset_is_a_404_in_the_error_shape(api_client, page):
    for _ in range(21):
        CreatorFactory()
    creator = CreatorFactory()
    PostFactory(creator=creator)

    for url in ("/api/models", f"/api/models/{creator.slug}/posts"):
        response = api_client.get(url, {"page": page})
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_a_creator_without_posts_has_an_empty_first_page(api_client):
    creator = CreatorFactory()

    body = api_client.get(f"/api/models/{creator.slug}/posts").json()

    assert body == {"count": 0, "next": None, "previous": None, "results": []}


def test_uploaded_creator_images_win_over_white_label_urls(api_client):
    creator = CreatorFactory()
    creator.icon.save("icon.png", _png(), save=True)

    row = api_client.get("/api/models").json()["results"][0]

    assert row["icon_url"].startswith("http://testserver/media/creators/icons/icon")
    assert row["banner_url"] == creator.source_banner_url


def _png():
    import io

    from django.core.files.base import ContentFile
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(out, "PNG")
    return ContentFile(out.getvalue())


def test_models_query_count_does_not_grow_with_creators(api_client, django_assert_max_num_queries):
    CreatorFactory()
    with django_assert_max_num_queries(1) as one:  # the page and its total in one query
        assert api_client.get("/api/models").status_code == 200
    for _ in range(49):
        CreatorFactory()
    with django_assert_max_num_queries(1) as fifty:
        assert len(api_client.get("/api/models").json()["results"]) == 20
    assert len(one.captured_queries) == len(fifty.captured_queries)


# ---------------------------------------------------------------------------
# GET /api/models/<slug>/posts
# ---------------------------------------------------------------------------
def test_posts_are_newest_first_and_paginated(api_client):
    creator = CreatorFactory()
    now = timezone.now()
    posts = [PostFactory(creator=creator, published_at=now - timedelta(days=n)) for n in range(23)]
    PostFactory(creator=creator, status=Post.Status.HIDDEN, published_at=now)
    PostFactory(published_at=now)  # another creator's

    first = api_client.get(f"/api/models/{creator.slug}/posts").json()
    second = api_client.get(f"/api/models/{creator.slug}/posts?page=2").json()

    assert first["count"] == second["count"] == 23
    assert [r["id"] for r in first["results"] + second["results"]] == [p.pk for p in posts]
    assert first["next"] == f"http://testserver/api/models/{creator.slug}/posts?page=2"
    assert second["previous"] == f"http://testserver/api/models/{creator.slug}/posts" and second["next"] is None
    assert set(first["results"][0]) == {"id", "title", "published_at", "media", "locked"}


@pytest.mark.parametrize("slug_state", ["unknown", "hidden"])
def test_an_unknown_or_hidden_creator_is_a_404_in_the_error_shape(api_client, slug_state):
    slug = "nobody"
    if slug_state == "hidden":
        slug = CreatorFactory(status=Creator.Status.HIDDEN).slug

    response = api_client.get(f"/api/models/{slug}/posts")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert set(response.json()["error"]) == {"code", "message", "fields"}


def _assert_locked(body, creator):
    raw = json.dumps(body)
    assert all(row["locked"] is True for row in body["results"])
    assert "X-Amz" not in raw and "Signature" not in raw and "wl-bucket" not in raw
    for key in creator.posts.values_list("media__key", flat=True):
        assert key not in raw
    for row in body["results"]:
        assert len(row["media"]) == 1 and row["media"][0]["type"] == "image"
        assert "/media/previews/" in row["media"][0]["url"]


def _assert_unlocked(body):
    assert all(row["locked"] is False for row in body["results"])
    assert all(len(row["media"]) == 2 for row in body["results"])
    url = body["results"][0]["media"][0]["url"]
    assert url.startswith("https://wl-bucket.s3.amazonaws.com/") and "X-Amz-Signature=" in url
    assert "X-Amz-Expires=3600" in url


def test_anonymous_visitors_get_locked_previews_only(api_client):
    creator = _creator_with_posts()

    _assert_locked(api_client.get(f"/api/models/{creator.slug}/posts").json(), creator)


def test_a_subscriber_gets_every_media_presigned(api_client, subscriber):
    creator = _creator_with_posts()
    api_client.force_login(subscriber)

    body = api_client.get(f"/api/models/{creator.slug}/posts").json()

    _assert_unlocked(body)
    post = creator.posts.order_by("-published_at").first()
    keys = list(post.media.order_by("position").values_list("key", flat=True))
    assert [m["url"].split("?")[0] for m in body["results"][0]["media"]] == [
        f"https://wl-bucket.s3.amazonaws.com/{key}" for key in keys
    ]


@pytest.mark.parametrize(
    ("status", "end_offset", "cancel_at_period_end", "locked"),
    [
        (Subscription.Status.EXPIRED, -timedelta(days=1), False, True),
        (Subscription.Status.PAST_DUE, -timedelta(days=1), False, False),  # within the grace days
        (Subscription.Status.PAST_DUE, -timedelta(days=4), False, True),  # grace over
        (Subscription.Status.ACTIVE, timedelta(days=3), True, False),  # canceled at period end, still paid
        (Subscription.Status.REFUNDED, timedelta(days=20), False, True),
        (Subscription.Status.PENDING, timedelta(days=20), False, True),
    ],
    ids=["expired", "in-grace", "grace-over", "canceling", "refunded", "pending"],
)
def test_access_follows_the_subscription_state(api_client, status, end_offset, cancel_at_period_end, locked):
    creator = _creator_with_posts()
    user = UserFactory()
    SubscriptionFactory(
        user=user,
        status=status,
        end_date=timezone.now() + end_offset,
        cancel_at_period_end=cancel_at_period_end,
    )
    api_client.force_login(user)

    body = api_client.get(f"/api/models/{creator.slug}/posts").json()

    if locked:
        _assert_locked(body, creator)
    else:
        _assert_unlocked(body)


def test_a_logged_in_user_without_subscription_is_locked(api_client, user):
    creator = _creator_with_posts()
    api_client.force_login(user)

    _assert_locked(api_client.get(f"/api/models/{creator.slug}/posts").json(), creator)


def test_a_post_without_preview_shows_nothing_when_locked(api_client):
    creator = CreatorFactory()
    post = PostFactory(creator=creator, preview="")
    MediaFactory(post=post)

    row = api_client.get(f"/api/models/{creator.slug}/posts").json()["results"][0]

    assert row == {"id": post.pk, "title": post.title, "published_at": row["published_at"], "media": [], "locked": True}


@pytest.mark.parametrize("logged_in", [False, True], ids=["anonymous", "subscriber"])
def test_posts_query_count_does_not_grow_with_posts(api_client, subscriber, logged_in, django_assert_max_num_queries):
    if logged_in:
        api_client.force_login(subscriber)
    creator = CreatorFactory()
    post = PostFactory(creator=creator)
    MediaFactory(post=post)
    url = f"/api/models/{creator.slug}/posts"
    budget = 4 if logged_in else 1

    with django_assert_max_num_queries(budget) as one:
        assert api_client.get(url).status_code == 200
    for _ in range(199):
        post = PostFactory(creator=creator)
        MediaFactory(post=post)
        MediaFactory(post=post)
    with django_assert_max_num_queries(budget) as many:
        body = api_client.get(url).json()
    assert body["count"] == 200 and len(body["results"]) == 20
    assert len(one.captured_queries) == len(many.captured_queries)


# ---------------------------------------------------------------------------
# Local file storage: paid uploads behind an access-checked view
# ---------------------------------------------------------------------------
def test_uploaded_media_are_served_locally_only_to_subscribers(client, subscriber):
    creator = CreatorFactory()
    item = UploadedMediaFactory(post=PostFactory(creator=creator))
    client.force_login(subscriber)

    url = client.get(f"/api/models/{creator.slug}/posts").json()["results"][0]["media"][0]["url"]
    assert url == f"http://testserver/api/media/{item.pk}/file"
    response = client.get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"paid-bytes"

    client.logout()
    denied = client.get(url)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "subscription_required"


def test_private_uploads_are_not_below_the_public_media_root(settings):
    from pathlib import Path

    item = UploadedMediaFactory()

    path = Path(item.file.path).resolve()
    assert not path.is_relative_to(Path(settings.MEDIA_ROOT).resolve())


def test_media_of_hidden_posts_are_not_served(client, subscriber):
    item = UploadedMediaFactory(post=PostFactory(status=Post.Status.HIDDEN))
    client.force_login(subscriber)

    assert client.get(f"/api/media/{item.pk}/file").status_code == 404


def test_a_subscriber_sees_posts_without_media_too(api_client, subscriber):
    creator = CreatorFactory()
    empty = PostFactory(creator=creator)
    full = PostFactory(creator=creator)
    MediaFactory(post=full)
    api_client.force_login(subscriber)

    rows = api_client.get(f"/api/models/{creator.slug}/posts").json()["results"]

    assert [(r["id"], len(r["media"]), r["locked"]) for r in rows] == [(full.pk, 1, False), (empty.pk, 0, False)]
