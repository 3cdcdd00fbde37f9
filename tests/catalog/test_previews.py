import io

import pytest
from PIL import Image

from catalog import signing
from catalog.demo import placeholder_image
from catalog.models import Media, Post
from catalog.services.previews import PREVIEW_SIZE, generate_previews, make_preview
from tests.catalog.factories import MediaFactory, PostFactory, UploadedMediaFactory

pytestmark = pytest.mark.django_db


def test_a_preview_is_a_small_blurred_jpeg():
    original = placeholder_image((1200, 1600), ("#ff0000", "#0000ff"), "AB")

    preview = Image.open(io.BytesIO(make_preview(original)))

    assert preview.format == "JPEG" and max(preview.size) <= PREVIEW_SIZE
    # Blurred: neighbouring pixels barely differ anywhere (the sharp text edges are gone).
    gray = preview.convert("L")
    width, height = gray.size
    jumps = max(abs(gray.getpixel((x, y)) - gray.getpixel((x + 1, y))) for y in range(0, height, 7) for x in range(width - 1))
    assert jumps < 40


def test_previews_are_made_from_the_first_uploaded_image():
    from django.core.files.base import ContentFile

    post = PostFactory(preview="")
    first = UploadedMediaFactory(post=post, position=0, file=ContentFile(placeholder_image((64, 64), ("#000000", "#ffffff"), "A"), name="a.jpg"))
    UploadedMediaFactory(post=post, position=1)

    assert generate_previews(post_ids=[post.pk]) == 1

    post.refresh_from_db()
    assert post.preview.name == f"previews/{post.pk}.jpg"
    assert post.preview.url == f"/media/previews/{post.pk}.jpg"
    assert first.file.name not in post.preview.url


def test_an_uploaded_preview_is_kept_and_video_only_posts_get_none():
    kept = PostFactory()  # has an uploaded preview
    name = kept.preview.name
    video_only = PostFactory(preview="")
    UploadedMediaFactory(post=video_only, type=Media.Type.VIDEO)

    assert generate_previews(post_ids=[kept.pk, video_only.pk]) == 0
    kept.refresh_from_db()
    assert kept.preview.name == name
    assert not Post.objects.get(pk=video_only.pk).preview


def test_white_label_previews_are_read_from_the_bucket(settings):
    from moto import mock_aws

    with mock_aws():
        signing.reset()
        client = signing.s3_client()
        client.create_bucket(Bucket="wl-bucket")
        client.put_object(Bucket="wl-bucket", Key="Ana/post/1.jpg", Body=placeholder_image((300, 300), ("#00ff00", "#000000"), "X"))
        post = PostFactory(preview="")
        MediaFactory(post=post, key="Ana/post/1.jpg")

        assert generate_previews(post_ids=[post.pk]) == 1
    signing.reset()
    post.refresh_from_db()
    assert Image.open(post.preview.open("rb")).format == "JPEG"
