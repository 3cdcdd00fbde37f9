"""Factories for catalog and white-label staging rows."""

from datetime import UTC, datetime, timedelta

import factory
from django.core.files.base import ContentFile

from catalog.models import Creator, Media, Post
from whitelabel.models import WhitelabelCreator, WhitelabelMedia, WhitelabelPost

BASE_TIME = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class CreatorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Creator

    name = factory.Sequence(lambda n: f"Criadora {n}")
    slug = factory.Sequence(lambda n: f"criadora-{n}")
    source_icon_url = factory.LazyAttribute(lambda o: f"https://cdn.example.com/{o.slug}/profile/icon.jpg")
    source_banner_url = factory.LazyAttribute(lambda o: f"https://cdn.example.com/{o.slug}/profile/banner.jpg")
    source_thumbnail_url = factory.LazyAttribute(lambda o: f"https://cdn.example.com/{o.slug}/thumb.jpg")


class PostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Post
        skip_postgeneration_save = True

    creator = factory.SubFactory(CreatorFactory)
    title = factory.Sequence(lambda n: f"Post {n}")
    published_at = factory.Sequence(lambda n: BASE_TIME + timedelta(hours=n))
    preview = factory.django.ImageField(filename="preview.jpg", width=8, height=8, format="JPEG")

    @factory.post_generation
    def keep_post_count(obj, create, extracted, **kwargs):
        # What the publishing and admin services do after every change of posts.
        if create:
            from catalog.services.publishing import refresh_post_counts

            refresh_post_counts(creator_ids=[obj.creator_id])


class MediaFactory(factory.django.DjangoModelFactory):
    """White-label media by default (a key in WHITELABEL_BUCKET)."""

    class Meta:
        model = Media

    post = factory.SubFactory(PostFactory)
    type = Media.Type.IMAGE
    position = factory.Sequence(lambda n: n)
    key = factory.LazyAttributeSequence(lambda o, n: f"{o.post.creator.slug}/{o.post.pk}/{n}.jpg")


class UploadedMediaFactory(MediaFactory):
    key = None
    file = factory.LazyFunction(lambda: ContentFile(b"paid-bytes", name="paid.jpg"))


class WhitelabelCreatorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WhitelabelCreator

    folder_name = factory.Sequence(lambda n: f"Modelo {n}")
    slug = factory.Sequence(lambda n: f"modelo-{n}")
    icon_key = factory.LazyAttribute(lambda o: f"{o.folder_name}/profile/icon.jpg")
    icon_url = factory.LazyAttribute(lambda o: f"https://cdn.example.com/{o.slug}/profile/icon.jpg")


class WhitelabelPostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WhitelabelPost

    creator = factory.SubFactory(WhitelabelCreatorFactory)
    folder_name = factory.Sequence(lambda n: f"post {n}")
    title = factory.LazyAttribute(lambda o: o.folder_name.title())


class WhitelabelMediaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WhitelabelMedia

    post = factory.SubFactory(WhitelabelPostFactory)
    s3_key = factory.LazyAttributeSequence(lambda o, n: f"{o.post.creator.folder_name}/{o.post.folder_name}/{n:03d}.jpg")
    url = factory.LazyAttribute(lambda o: f"https://cdn.example.com/{o.s3_key}")
    type = WhitelabelMedia.Type.IMAGE
    sort_key = factory.LazyAttribute(lambda o: o.s3_key)
    last_modified = factory.Sequence(lambda n: BASE_TIME + timedelta(minutes=n))
