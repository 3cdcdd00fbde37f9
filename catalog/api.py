"""
Catalog API (contract §3): the creators listing and a creator's posts.

Rows are built as plain dicts rather than through serializer instances: the
serializers below describe the payload for the schema, and the listing runs at
~2× the requests/s DRF's per-field serialization allows (bench/api.py).
"""

from django.core.paginator import Paginator as DjangoPaginator
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.pagination import PageNumberPagination

from accounts.access import user_has_access
from catalog import selectors
from catalog.models import Creator, Media, Post
from catalog.storage import PrivateFileSystemStorage
from config.api_errors import json_error


class CatalogPagination(PageNumberPagination):
    page_size = 20


class PostPagination(CatalogPagination):
    """
    Counts from `Creator.post_count` (kept by the services that publish and
    hide posts) instead of a COUNT(*) per request: one query fewer on the
    busiest endpoint.
    """

    known_count: int | None = None

    def django_paginator_class(self, object_list, per_page):
        paginator = DjangoPaginator(object_list, per_page)
        if self.known_count is not None:
            paginator.count = self.known_count  # shadows the cached_property
        return paginator


class CreatorListOutput(serializers.Serializer):
    name = serializers.CharField()
    slug = serializers.SlugField()
    icon_url = serializers.CharField(allow_blank=True)
    banner_url = serializers.CharField(allow_blank=True)
    thumbnail_url = serializers.CharField(allow_blank=True)
    post_count = serializers.IntegerField()


class PostMediaOutput(serializers.Serializer):
    type = serializers.ChoiceField(choices=Media.Type.choices)
    url = serializers.URLField()


class PostListOutput(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    published_at = serializers.DateTimeField()
    media = PostMediaOutput(many=True)
    locked = serializers.BooleanField(
        help_text="True without a subscription: `media` then holds only the public preview."
    )


def _absolute(request, url: str) -> str:
    return request.build_absolute_uri(url) if url and url.startswith("/") else url


class CreatorListApi(generics.ListAPIView):
    """Published creators, most posts first."""

    serializer_class = CreatorListOutput
    pagination_class = CatalogPagination

    def get_queryset(self):
        return selectors.list_creators().only(*selectors.CREATOR_LIST_FIELDS)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        rows = [
            {
                "name": creator.name,
                "slug": creator.slug,
                "icon_url": _absolute(request, creator.icon_url),
                "banner_url": _absolute(request, creator.banner_url),
                "thumbnail_url": _absolute(request, creator.thumbnail_url),
                "post_count": creator.post_count,
            }
            for creator in page
        ]
        return self.get_paginated_response(rows)


class CreatorPostListApi(generics.ListAPIView):
    """A published creator's posts, newest first; media presigned for subscribers, preview only otherwise."""

    serializer_class = PostListOutput
    pagination_class = PostPagination
    queryset = Post.objects.none()  # for the schema; the real one needs the slug

    def get_queryset(self):
        creator = selectors.get_creator(self.kwargs["slug"])
        self.paginator.known_count = creator.post_count
        return selectors.list_posts(creator)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        media = selectors.media_for(page, request.user, has_access=user_has_access(request.user), request=request)
        rows = [
            {
                "id": post.pk,
                "title": post.title,
                "published_at": post.published_at,
                "media": media[post.pk]["media"],
                "locked": media[post.pk]["locked"],
            }
            for post in page
        ]
        return self.get_paginated_response(rows)


@extend_schema(exclude=True)
def media_file(request, pk: int):
    """
    Local file storage only (`make run`): a paid file, to users with access.
    In production media URLs are presigned and this view answers 404.
    """
    item = get_object_or_404(
        Media.objects.only("id", "file", "post_id"),
        pk=pk,
        post__status=Post.Status.PUBLISHED,
        post__creator__status=Creator.Status.PUBLISHED,
    )
    if not item.file or not isinstance(item.file.storage, PrivateFileSystemStorage):
        return json_error("not_found", _("Not found."), 404)
    if not user_has_access(request.user):
        return json_error("subscription_required", _("A subscription is required to see this file."), 403)
    response = FileResponse(item.file.open("rb"))
    response["Cache-Control"] = "private, max-age=3600"
    return response

