import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from catalog.models import Creator, Media, Post
from tests.catalog.factories import (
    CreatorFactory,
    MediaFactory,
    PostFactory,
    UploadedMediaFactory,
    WhitelabelCreatorFactory,
    WhitelabelMediaFactory,
    WhitelabelPostFactory,
)
from whitelabel.models import WhitelabelCreator

pytestmark = pytest.mark.django_db


def _jpeg(name="photo.jpg"):
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "teal").save(out, "JPEG")
    return SimpleUploadedFile(name, out.getvalue(), content_type="image/jpeg")


@pytest.mark.parametrize(
    "url",
    [
        "/admin/catalog/creator/",
        "/admin/catalog/creator/?q=cria",
        "/admin/catalog/creator/add/",
        "/admin/catalog/post/",
        "/admin/catalog/post/?q=post",
        "/admin/catalog/post/add/",
    ],
)
def test_admin_pages_render(admin_client, url):
    post = PostFactory()
    MediaFactory(post=post)
    UploadedMediaFactory(post=post)

    assert admin_client.get(url).status_code == 200


def test_change_pages_render_with_media_previews(admin_client):
    post = PostFactory()
    MediaFactory(post=post)
    UploadedMediaFactory(post=post)

    assert admin_client.get(f"/admin/catalog/creator/{post.creator_id}/change/").status_code == 200
    response = admin_client.get(f"/admin/catalog/post/{post.pk}/change/")
    assert response.status_code == 200
    assert b"X-Amz-Signature" in response.content  # staff see the signed media


def test_an_admin_creates_a_post_with_uploaded_media(admin_client, django_capture_on_commit_callbacks, monkeypatch):
    from catalog.tasks import generate_previews

    # Run the enqueued task in-process whatever the broker (REDIS_URL may be set).
    monkeypatch.setattr(generate_previews, "delay", lambda **kw: generate_previews.apply(kwargs=kw))
    creator = CreatorFactory()
    data = {
        "creator": creator.pk,
        "title": "Ensaio na praia",
        "published_at_0": "2026-11-20",
        "published_at_1": "10:00:00",
        "status": "published",
        "media-TOTAL_FORMS": "1",
        "media-INITIAL_FORMS": "0",
        "media-MIN_NUM_FORMS": "0",
        "media-MAX_NUM_FORMS": "1000",
        "media-0-position": "0",
        "media-0-type": "image",
        "media-0-file": _jpeg(),
    }

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post("/admin/catalog/post/add/", data)

    assert response.status_code == 302, response.content[:2000]
    post = Post.objects.get(title="Ensaio na praia")
    item = post.media.get()
    assert item.key is None and item.file.name.startswith("media/")
    creator.refresh_from_db()
    assert creator.post_count == 1
    post.refresh_from_db()
    assert post.preview.name == f"previews/{post.pk}.jpg"  # generated from the upload by the task


def test_publish_and_hide_actions(admin_client):
    creator = CreatorFactory()
    post = PostFactory(creator=creator)
    Creator.objects.filter(pk=creator.pk).update(post_count=1)

    admin_client.post("/admin/catalog/post/", {"action": "hide_posts", "_selected_action": [post.pk]})
    post.refresh_from_db()
    creator.refresh_from_db()
    assert post.status == Post.Status.HIDDEN and creator.post_count == 0

    admin_client.post("/admin/catalog/creator/", {"action": "hide_creators", "_selected_action": [creator.pk]})
    creator.refresh_from_db()
    assert creator.status == Creator.Status.HIDDEN

    admin_client.post("/admin/catalog/creator/", {"action": "publish_creators", "_selected_action": [creator.pk]})
    creator.refresh_from_db()
    assert creator.status == Creator.Status.PUBLISHED


def test_featured_order_is_editable_in_the_list(admin_client):
    first, second = CreatorFactory(), CreatorFactory()
    data = {
        "form-TOTAL_FORMS": "2",
        "form-INITIAL_FORMS": "2",
        "form-0-id": first.pk,
        "form-0-is_featured": "on",
        "form-0-featured_order": "2",
        "form-1-id": second.pk,
        "form-1-is_featured": "on",
        "form-1-featured_order": "1",
        "_save": "Save",
    }

    response = admin_client.post("/admin/catalog/creator/", data)

    assert response.status_code == 302
    from catalog.selectors import list_featured_creators

    assert list(list_featured_creators()) == [second, first]


def test_publish_to_catalog_action_on_white_label_creators(admin_client):
    staged = WhitelabelCreatorFactory()
    WhitelabelMediaFactory(post=WhitelabelPostFactory(creator=staged))

    response = admin_client.post(
        "/admin/whitelabel/whitelabelcreator/", {"action": "publish_to_catalog", "_selected_action": [staged.pk]}
    )

    assert response.status_code == 302
    assert Creator.objects.get().source_id == staged.pk
    assert Media.objects.count() == 1
    staged.refresh_from_db()
    assert staged.status == WhitelabelCreator.Status.ACTIVE
