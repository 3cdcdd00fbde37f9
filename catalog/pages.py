"""
Server-rendered catalog pages: home, creators, a creator's feed, a post.

Reads go through `catalog.selectors`; the paywall answer (locked or the
media a user may see) comes from `selectors.media_for`, asked once per page
with the access check done once, so a page costs a constant number of
queries whatever the number of posts.
"""

from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.gate import age_gate
from billing.access import user_has_access
from catalog import selectors
from catalog.models import Creator, Post
from catalog.page_cache import page_cache_without_access

HOME_CREATORS = 8
HOME_POSTS = 12
CREATORS_PER_PAGE = 24
POSTS_PER_PAGE = 24
MORE_POSTS = 4


def _cards(posts, user, has_access, request):
    """Posts with what a card shows: the cover image, locked or not, and whether it holds a video."""
    posts = list(posts)
    media = selectors.media_for(posts, user, has_access=has_access, request=request) if posts else {}
    cards = []
    for post in posts:
        entry = media.get(post.pk, {"locked": True, "media": []})
        items = entry["media"]
        images = [m["url"] for m in items if m["type"] == "image"]
        cards.append(
            {
                "post": post,
                "locked": entry["locked"],
                "cover": images[0] if images else "",
                "has_video": any(m["type"] == "video" for m in items),
                "count": len(items),
            }
        )
    return cards


def _page(request, queryset, per_page):
    paginator = Paginator(queryset, per_page)
    return paginator.get_page(request.GET.get("page"))


@require_GET
@page_cache_without_access
def home(request):
    has_access = user_has_access(request.user)
    featured = list(selectors.list_featured_creators()[:HOME_CREATORS])
    if not featured:
        featured = list(selectors.list_creators()[:HOME_CREATORS])
    newest = (
        Post.objects.filter(status=Post.Status.PUBLISHED, creator__status=Creator.Status.PUBLISHED)
        .select_related("creator")
        .order_by("-published_at", "-id")[:HOME_POSTS]
    )
    return render(
        request,
        "site/home.html",
        {"featured": featured, "cards": _cards(newest, request.user, has_access, request), "has_access": has_access},
    )


@require_GET
def creators(request):
    search = (request.GET.get("q") or "").strip()[:100]
    page = _page(request, selectors.list_creators(search=search), CREATORS_PER_PAGE)
    return render(request, "site/creators.html", {"page": page, "search": search})


@require_GET
@age_gate
@page_cache_without_access
def creator(request, slug: str):
    creator = selectors.get_creator(slug)
    has_access = user_has_access(request.user)
    page = _page(request, selectors.list_posts(creator), POSTS_PER_PAGE)
    for post in page.object_list:
        post.creator = creator  # the cards show the creator; it is this one
    return render(
        request,
        "site/creator.html",
        {
            "creator": creator,
            "page": page,
            "cards": _cards(page.object_list, request.user, has_access, request),
            "has_access": has_access,
        },
    )


@require_GET
@age_gate
@page_cache_without_access
def post(request, post_id: int):
    post = selectors.get_post(post_id)
    has_access = user_has_access(request.user)
    entry = selectors.media_for(post, request.user, has_access=has_access, request=request)
    items = entry["media"]
    preview = post.preview.url if post.preview else ""
    first_image = next((m["url"] for m in items if m["type"] == "image"), "")
    more = selectors.list_posts(post.creator).exclude(pk=post.pk)[:MORE_POSTS]
    for other in more:
        other.creator = post.creator
    return render(
        request,
        "site/post.html",
        {
            "post": post,
            "creator": post.creator,
            "locked": entry["locked"],
            "media": items,
            "poster": preview or first_image,
            # Locked without a preview: the creator's own picture, blurred, still says "content here".
            "preview": preview or first_image or post.creator.thumbnail_url or post.creator.banner_url,
            "more_cards": _cards(more, request.user, has_access, request),
            "has_access": has_access,
        },
    )
