"""
The ad platforms' browser pixels (contract §4, §5): Meta Pixel, Google
Analytics 4 (gtag) and the TikTok pixel.

They load only after the visitor's consent: GA4 with "analytics", Meta and
TikTok with "marketing" (legal.consent). No inline script: the page carries
the pixel ids as a JSON data block and `static/js/pixels.js` loads the
platforms' scripts; the Content-Security-Policy of that response is widened
by exactly the origins of the platforms that load, and only on pages where
they do. Purchase is also sent from the server when the payment is confirmed
(integrations.conversions), with the checkout's public id as event id, the id
pixels.js gives its browser Purchase, so the platforms keep one.

The ids are public (they are in every page's source once consented); the
write-only secrets never leave the server. They are read through the cache
(one Redis GET per page), keyed by the row's `updated_at`.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache

from integrations.models import TrackingPixels
from legal.consent import read_consent

CACHE_KEY = "integrations:pixel-ids"
CACHE_SECONDS = 300

# What each platform's script fetches once loaded, beyond its own origin (the platforms'
# published CSP guidance): beacons and configuration.
CONNECT_ORIGINS = {
    "meta": ["https://www.facebook.com", "https://connect.facebook.net"],
    "ga4": ["https://*.google-analytics.com", "https://*.analytics.google.com", "https://*.googletagmanager.com"],
    "tiktok": ["https://analytics.tiktok.com", "https://analytics-ipv6.tiktokw.us"],
}
# Which consent each platform needs.
CONSENT = {"meta": "marketing", "ga4": "analytics", "tiktok": "marketing"}


@dataclass(frozen=True)
class PixelIds:
    meta: str = ""
    ga4: str = ""
    tiktok: str = ""
    version: str = "0"

    def of(self, platform: str) -> str:
        return getattr(self, platform)


def pixel_ids() -> PixelIds:
    """The configured ids (no secrets), from the cache; the settings row is read once per CACHE_SECONDS."""
    ids = cache.get(CACHE_KEY)
    if ids is None:
        row = TrackingPixels.objects.filter(pk=1).first()
        ids = PixelIds(
            meta=row.meta_pixel_id, ga4=row.ga4_measurement_id, tiktok=row.tiktok_pixel_id,
            version=str(row.updated_at.timestamp()),
        ) if row else PixelIds()
        cache.set(CACHE_KEY, ids, CACHE_SECONDS)
    return ids


def forget_pixel_ids() -> None:
    """After the admin saves the settings row: the next page reads it again."""
    cache.delete(CACHE_KEY)


def script_url(platform: str, pixel_id: str) -> str:
    base = {
        "meta": settings.META_PIXEL_SCRIPT_URL,
        "ga4": settings.GA4_TAG_SCRIPT_URL,
        "tiktok": settings.TIKTOK_PIXEL_SCRIPT_URL,
    }[platform]
    if platform == "ga4":
        return f"{base}?id={pixel_id}"
    if platform == "tiktok":
        return f"{base}?sdkid={pixel_id}&lib=ttq"
    return base


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class PagePixels:
    """The pixels one page loads: {platform: {"id", "script"}}, empty when none may load."""

    platforms: dict
    version: str = "0"

    @property
    def enabled(self) -> bool:
        return bool(self.platforms)

    def csp_update(self) -> dict:
        """The origins the loaded pixels need, and nothing when none loads."""
        if not self.platforms:
            return {}
        scripts = sorted({_origin(p["script"]) for p in self.platforms.values()})
        connect = sorted({o for name in self.platforms for o in CONNECT_ORIGINS[name]} | set(scripts))
        return {"script-src": scripts, "connect-src": connect}

    def cache_key(self) -> str:
        """What a page's pixel markup depends on, for pages served from a cache (catalog.page_cache)."""
        return ",".join(sorted(self.platforms)) + "@" + self.version if self.platforms else "-"


def pixels_for(request) -> PagePixels:
    """The pixels this visitor's pages load (their consent × what is configured); computed once per request."""
    found = getattr(request, "_page_pixels", None)
    if found is None:
        consent = read_consent(request)
        ids = pixel_ids() if consent.analytics or consent.marketing else PixelIds()
        platforms = {
            name: {"id": ids.of(name), "script": script_url(name, ids.of(name))}
            for name in ("meta", "ga4", "tiktok")
            if ids.of(name) and getattr(consent, CONSENT[name])
        }
        found = request._page_pixels = PagePixels(platforms=platforms, version=ids.version)
    return found


def page_pixels(request):
    """Context processor: `pixels` for base.html's data block and script tag."""
    return {"pixels": pixels_for(request)}
