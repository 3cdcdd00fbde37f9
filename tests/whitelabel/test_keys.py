"""The key parser over a table of keys (contract §7)."""

import pytest

from whitelabel.keys import (
    KeyKind,
    SkipReason,
    natural_sort_key,
    normalize_prefix,
    object_url,
    parse_key,
    title_from_folder,
)

T, I, B, M, S = KeyKind.THUMBNAIL, KeyKind.ICON, KeyKind.BANNER, KeyKind.MEDIA, KeyKind.SKIPPED

# key, kind, creator, post, media type, path in post, skip reason
TABLE = [
    # contract §7 rows
    ("ana/capa.jpg", T, "ana", "", "", "", None),
    ("ana/capa.jpeg", T, "ana", "", "", "", None),
    ("ana/capa.png", T, "ana", "", "", "", None),
    ("ana/capa.webp", T, "ana", "", "", "", None),
    ("ana/capa.gif", T, "ana", "", "", "", None),
    ("ana/capa.avif", T, "ana", "", "", "", None),
    ("ana/profile/icon.jpg", I, "ana", "", "", "", None),
    ("ana/profile/banner.png", B, "ana", "", "", "", None),
    ("ana/Profile/ICON.PNG", I, "ana", "", "", "", None),
    ("ana/PROFILE/Banner.WebP", B, "ana", "", "", "", None),
    ("ana/profile/avatar.jpg", S, "ana", "", "", "", SkipReason.PROFILE_OTHER),
    ("ana/profile/icon.txt", S, "ana", "", "", "", SkipReason.PROFILE_OTHER),
    ("ana/profile/old/icon.jpg", S, "ana", "", "", "", SkipReason.PROFILE_OTHER),
    ("ana/praia/1.jpg", M, "ana", "praia", "image", "1.jpg", None),
    ("ana/praia/clip.mp4", M, "ana", "praia", "video", "clip.mp4", None),
    ("ana/praia/clip.mov", M, "ana", "praia", "video", "clip.mov", None),
    ("ana/praia/clip.webm", M, "ana", "praia", "video", "clip.webm", None),
    ("ana/praia/clip.m4v", M, "ana", "praia", "video", "clip.m4v", None),
    ("ana/praia/clip.mkv", M, "ana", "praia", "video", "clip.mkv", None),
    ("ana/praia/clip.avi", M, "ana", "praia", "video", "clip.avi", None),
    ("ana/praia/clip.wmv", M, "ana", "praia", "video", "clip.wmv", None),
    ("ana/praia/clip.flv", M, "ana", "praia", "video", "clip.flv", None),
    ("ana/praia/leia.txt", S, "ana", "", "", "", SkipReason.UNSUPPORTED_TYPE),
    ("ana/praia/doc.pdf", S, "ana", "", "", "", SkipReason.UNSUPPORTED_TYPE),
    ("ana/", S, "", "", "", "", SkipReason.FOLDER_MARKER),
    ("ana/praia/", S, "", "", "", "", SkipReason.FOLDER_MARKER),
    (".DS_Store", S, "", "", "", "", SkipReason.HIDDEN_FILE),
    ("ana/.DS_Store", S, "", "", "", "", SkipReason.HIDDEN_FILE),
    ("ana/praia/._1.jpg", S, "", "", "", "", SkipReason.HIDDEN_FILE),
    ("ana/.trash/1.jpg", S, "", "", "", "", SkipReason.HIDDEN_FILE),
    ("solto.jpg", S, "", "", "", "", SkipReason.OTHER_SHAPE),
    ("ana//1.jpg", S, "", "", "", "", SkipReason.OTHER_SHAPE),
    ("ana/capa.mp4", S, "ana", "", "", "", SkipReason.UNSUPPORTED_TYPE),
    # unicode, spaces, %, +
    (
        "Júlia Gonçalves/Ensaio à beira-mar/foto 1.jpg",
        M,
        "Júlia Gonçalves",
        "Ensaio à beira-mar",
        "image",
        "foto 1.jpg",
        None,
    ),
    ("李/帖子/照片.png", M, "李", "帖子", "image", "照片.png", None),
    ("ana/100% real/1+1=2.jpg", M, "ana", "100% real", "image", "1+1=2.jpg", None),
    ("ana+bia/capa%20.jpg", T, "ana+bia", "", "", "", None),
    # deep nesting
    ("ana/praia/dia 1/manhã/a/b/c.JPG", M, "ana", "praia", "image", "dia 1/manhã/a/b/c.JPG", None),
    # upper-case extensions
    ("ana/praia/CLIP.MP4", M, "ana", "praia", "video", "CLIP.MP4", None),
    ("ana/CAPA.JPEG", T, "ana", "", "", "", None),
    # no extension, dot at the end
    ("ana/praia/README", S, "ana", "", "", "", SkipReason.NO_EXTENSION),
    ("ana/praia/foto.", S, "ana", "", "", "", SkipReason.NO_EXTENSION),
    ("ana/capa", S, "ana", "", "", "", SkipReason.NO_EXTENSION),
]


@pytest.mark.parametrize(("key", "kind", "creator", "post", "media_type", "path", "reason"), TABLE)
def test_it_classifies_each_key(key, kind, creator, post, media_type, path, reason):
    parsed = parse_key(key)

    assert parsed.kind is kind
    assert parsed.skip_reason == reason
    if kind is not S:
        assert parsed.creator == creator
        assert parsed.post == post
        assert parsed.media_type == media_type
        assert parsed.path_in_post == path
    assert parsed.key == key


@pytest.mark.parametrize(
    ("key", "kind", "reason"),
    [
        ("wl/ana/praia/1.jpg", M, None),
        ("wl/ana/capa.png", T, None),
        ("other/ana/praia/1.jpg", S, SkipReason.OUTSIDE_PREFIX),
        ("wl/", S, SkipReason.FOLDER_MARKER),
        ("wlx/ana/praia/1.jpg", S, SkipReason.OUTSIDE_PREFIX),
    ],
)
def test_it_parses_below_the_prefix(key, kind, reason):
    parsed = parse_key(key, normalize_prefix("/wl/"))

    assert parsed.kind is kind
    assert parsed.skip_reason == reason


def test_media_key_keeps_the_full_key_with_the_prefix():
    parsed = parse_key("wl/ana/praia/1.jpg", "wl/")

    assert (parsed.key, parsed.creator, parsed.post) == ("wl/ana/praia/1.jpg", "ana", "praia")


@pytest.mark.parametrize(("prefix", "expected"), [("", ""), ("/", ""), ("wl", "wl/"), ("/wl/", "wl/"), ("a/b", "a/b/")])
def test_it_normalizes_the_prefix(prefix, expected):
    assert normalize_prefix(prefix) == expected


@pytest.mark.parametrize(
    ("key", "url"),
    [
        ("ana/praia/1.jpg", "https://cdn.example.com/ana/praia/1.jpg"),
        ("Júlia/foto 1.jpg", "https://cdn.example.com/J%C3%BAlia/foto%201.jpg"),
        ("ana/100% real/1+1=2.jpg", "https://cdn.example.com/ana/100%25%20real/1%2B1%3D2.jpg"),
        ("ana/a?b#c/x&y.jpg", "https://cdn.example.com/ana/a%3Fb%23c/x%26y.jpg"),
    ],
)
def test_urls_percent_encode_each_segment(key, url):
    assert object_url("https://cdn.example.com/", key) == url


def test_natural_sort_puts_2_before_10():
    names = ["10.jpg", "2.jpg", "1.jpg", "B.jpg", "a.jpg"]

    assert sorted(names, key=natural_sort_key) == ["1.jpg", "2.jpg", "10.jpg", "a.jpg", "B.jpg"]


@pytest.mark.parametrize(
    ("folder", "title"), [("ensaio_praia  2024", "ensaio praia 2024"), ("Dia 1", "Dia 1"), ("___", "___")]
)
def test_title_comes_from_the_folder_name(folder, title):
    assert title_from_folder(folder) == title
