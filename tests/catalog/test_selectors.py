import pytest
from django.http import Http404

from catalog import selectors
from catalog.models import Creator, Post
from tests.catalog.factories import CreatorFactory, MediaFactory, PostFactory

pytestmark = pytest.mark.django_db


def test_featured_creators_come_in_the_admins_order():
    second = CreatorFactory(is_featured=True, featured_order=2)
    first = CreatorFactory(is_featured=True, featured_order=1)
    CreatorFactory(is_featured=True, featured_order=0, status=Creator.Status.HIDDEN)
    CreatorFactory()

    assert list(selectors.list_featured_creators()) == [first, second]


def test_list_creators_searches_by_name():
    ana = CreatorFactory(name="Ana Júlia")
    CreatorFactory(name="Bruna")

    assert list(selectors.list_creators(search="  júlia ")) == [ana]
    assert selectors.list_creators().count() == 2


def test_get_creator_and_get_post_hide_what_is_not_published():
    post = PostFactory()
    hidden_post = PostFactory(creator=post.creator, status=Post.Status.HIDDEN)
    assert selectors.get_creator(post.creator.slug) == post.creator
    assert selectors.get_post(post.pk) == post
    with pytest.raises(Http404):
        selectors.get_post(hidden_post.pk)

    Creator.objects.filter(pk=post.creator_id).update(status=Creator.Status.HIDDEN)
    with pytest.raises(Http404):
        selectors.get_creator(post.creator.slug)
    with pytest.raises(Http404):
        selectors.get_post(post.pk)


def test_media_for_one_post_and_for_a_page(subscriber, user, django_assert_num_queries):
    posts = [PostFactory() for _ in range(3)]
    for post in posts:
        MediaFactory(post=post)
        MediaFactory(post=post)

    with django_assert_num_queries(1):  # the access check only
        locked = selectors.media_for(posts[0], user)
    assert locked["locked"] and locked["media"][0]["url"].startswith("/media/previews/")

    with django_assert_num_queries(2):  # access + all media together
        page = selectors.media_for(posts, subscriber)
    assert set(page) == {p.pk for p in posts}
    assert all(not v["locked"] and len(v["media"]) == 2 for v in page.values())

    with django_assert_num_queries(0):
        assert selectors.media_for(posts, None, has_access=False)[posts[1].pk]["locked"]


def test_uploads_on_s3_are_presigned_from_the_uploads_bucket(settings, monkeypatch, subscriber):
    from storages.backends.s3 import S3Storage

    from catalog.models import Media

    settings.AWS_STORAGE_BUCKET_NAME = "uploads-bucket"
    monkeypatch.setattr(Media._meta.get_field("file"), "storage", S3Storage(bucket_name="uploads-bucket", location="private"))
    post = PostFactory()
    Media.objects.create(post=post, type=Media.Type.VIDEO, file="media/2026/11/clip.mp4")

    media = selectors.media_for(post, subscriber)["media"]

    assert media[0]["type"] == "video"
    assert media[0]["url"].startswith("https://uploads-bucket.s3.amazonaws.com/private/media/2026/11/clip.mp4?")
    assert "X-Amz-Signature=" in media[0]["url"]
