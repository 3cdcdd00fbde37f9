import pytest

from catalog.demo import load_demo_catalog
from catalog.models import Creator, Media, Post

pytestmark = pytest.mark.django_db


def _rows():
    return (
        sorted(Creator.objects.values_list("slug", "icon", "banner", "thumbnail", "post_count", "is_featured")),
        sorted(Post.objects.values_list("id", "title", "preview", "published_at")),
        sorted(Media.objects.values_list("id", "post_id", "file", "position")),
    )


def test_the_demo_catalog_is_created_once(settings):
    summary = load_demo_catalog()
    first = _rows()

    assert load_demo_catalog() == summary == ", 4 creators, 24 posts"
    assert _rows() == first
    assert Creator.objects.filter(is_featured=True).count() == 2
    counts = [Media.objects.filter(post=post).count() for post in Post.objects.all()]
    assert min(counts) == 2 and max(counts) == 4


def test_demo_images_are_real_files_served_through_the_paywall(api_client, subscriber):
    load_demo_catalog()
    creator = Creator.objects.get(slug="luna-costa")

    locked = api_client.get(f"/api/models/{creator.slug}/posts").json()["results"][0]
    assert locked["locked"] and locked["media"][0]["url"].startswith("http://testserver/media/previews/")
    assert creator.icon.storage.exists(creator.icon.name)

    api_client.force_login(subscriber)
    unlocked = api_client.get(f"/api/models/{creator.slug}/posts").json()["results"][0]
    response = api_client.get(unlocked["media"][0]["url"])
    assert response.status_code == 200
    assert b"".join(response.streaming_content)[:3] == b"\xff\xd8\xff"  # a JPEG
