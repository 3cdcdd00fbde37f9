"""
Catalog API (contract §3): the creators listing and a creator's posts.

Rows are built as plain dicts from tuples (the serializers below only
describe the payload for the schema), and each page is read together with its
total in one query: per-request CPU is what the benchmark measures against a
bare JsonResponse (bench/api.py, docs/catalog.md).
"""

from django.db.models import Count, Window
from django.http import FileResponse, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound
from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from billing.access import user_has_access
from catalog import api_cache, selectors
from catalog.models import Creator, Media, Post
from catalog.storage import PrivateFileSystemStorage
from config.api_errors import json_error

JSON = JSONRenderer.media_type


class CatalogPagination(PageNumberPagination):
    """
    DRF's page-number pagination (contract §3), with the total counted in
    the same query as the page where possible: `one_query_page` below.
    """

    page_size = 20
    MAX_PAGE = 10**9

    def page_number(self, request) -> int:
        raw = request.query_params.get(self.page_query_param, 1)
        try:
            number = int(raw)
        except (TypeError, ValueError):
            raise NotFound(_("Invalid page.")) from None
        # Past MAX_PAGE no catalogue has rows, and the offset would overflow PostgreSQL's bigint.
        if not 1 <= number <= self.MAX_PAGE:
            raise NotFound(_("Invalid page."))
        return number

    def response(self, request, *, number: int, count: int, rows: list) -> Response:
        return Response(self.data(request, number=number, count=count, rows=rows))

    def data(self, request, *, number: int, count: int, rows: list) -> dict:
        url = request.build_absolute_uri()
        next_url = replace_query_param(url, self.page_query_param, number + 1) if number * self.page_size < count else None
        if number == 1:
            previous_url = None
        elif number == 2:
            previous_url = remove_query_param(url, self.page_query_param)
        else:
            previous_url = replace_query_param(url, self.page_query_param, number - 1)
        return {"count": count, "next": next_url, "previous": previous_url, "results": rows}


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
        paginator = self.paginator
        number = paginator.page_number(request)
        size = paginator.page_size
        # The total rides along with the page (COUNT(*) OVER ()): one query, not
        # two; plain tuples, not model instances with three FieldFiles each.
        page = list(
            self.get_queryset()
            .annotate(total=Window(Count("id")))
            .values_list(
                "name", "slug", "icon", "banner", "thumbnail",
                "source_icon_url", "source_banner_url", "source_thumbnail_url", "post_count", "total",
            )[(number - 1) * size : number * size]
        )
        count = page[0][-1] if page else self.get_queryset().count()
        if not page and number > 1:
            raise NotFound(_("Invalid page."))
        storage = Creator._meta.get_field("icon").storage
        rows = [
            {
                "name": name,
                "slug": slug,
                "icon_url": _absolute(request, storage.url(icon) if icon else icon_url),
                "banner_url": _absolute(request, storage.url(banner) if banner else banner_url),
                "thumbnail_url": _absolute(request, storage.url(thumbnail) if thumbnail else thumbnail_url),
                "post_count": post_count,
            }
            for name, slug, icon, banner, thumbnail, icon_url, banner_url, thumbnail_url, post_count, _total in page
        ]
        return paginator.response(request, number=number, count=count, rows=rows)


class CreatorPostListApi(generics.ListAPIView):
    """A published creator's posts, newest first; media presigned for subscribers, preview only otherwise."""

    serializer_class = PostListOutput
    pagination_class = CatalogPagination
    queryset = Post.objects.none()  # for the schema; the real one needs the slug

    def list(self, request, *args, **kwargs):
        paginator = self.paginator
        number = paginator.page_number(request)
        size = paginator.page_size
        slug = kwargs["slug"]
        offset = (number - 1) * size
        # One query for the page, the total (the creator's post_count, kept by
        # the services that publish and hide posts) and, with access, every
        # media of the page. The creator is looked up on its own only when the
        # page comes back empty (unknown slug → 404, or a creator without posts).
        if not user_has_access(request.user):  # asked of the database on every request
            count, rows = selectors.locked_post_page(slug, offset=offset, limit=size, request=request)
            count = self._count(slug, number, count)
            return paginator.response(request, number=number, count=count, rows=rows)
        # With access the page is the same bytes for every viewer with access
        # within a signing window: served from the cache (catalog/api_cache.py).
        slot = api_cache.slot(request)
        if slot is not None and slot.body is not None:
            return HttpResponse(slot.body, content_type=JSON)
        count, rows = selectors.post_page_with_media(slug, offset=offset, limit=size, request=request)
        count = self._count(slug, number, count)
        body = JSONRenderer().render(paginator.data(request, number=number, count=count, rows=rows))
        if slot is not None:
            slot.store(body)
        return HttpResponse(body, content_type=JSON)

    @staticmethod
    def _count(slug: str, number: int, count: int | None) -> int:
        if count is None:
            count = selectors.get_creator(slug).post_count  # Http404 → the error shape
            if number > 1:
                raise NotFound(_("Invalid page."))
        return count


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

