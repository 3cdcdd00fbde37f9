"""
A small demo catalog for `make run` (called by `manage.py load_demo`).

Four creators with six posts each and two to four images per post, two of
them featured. Every picture is generated here with Pillow (a colour
gradient and the creator's initials), so the demo needs no network and no
bucket: creator images go to the public storage, paid media to the private
one (served to subscribers by the access-checked view), and each post gets
its blurred public preview. Idempotent: a second run finds every row and file
in place and writes nothing new.
"""

import io
from datetime import timedelta

from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image, ImageChops, ImageDraw, ImageFont

from catalog.models import Creator, Media, Post
from catalog.services.previews import make_preview
from catalog.services.publishing import refresh_post_counts

CREATORS = [
    {
        "name": "Luna Costa",
        "slug": "luna-costa",
        "colors": ("#ff6b9a", "#5b2a86"),
        "featured": 1,
        "description": "Ensaios ao pôr do sol e bastidores das viagens.",
    },
    {
        "name": "Bia Mendes",
        "slug": "bia-mendes",
        "colors": ("#ffb347", "#c2185b"),
        "featured": 2,
        "description": "Moda, praia e making of das produções.",
    },
    {
        "name": "Carol Dias",
        "slug": "carol-dias",
        "colors": ("#4facfe", "#1a237e"),
        "featured": None,
        "description": "Fotografia urbana em São Paulo.",
    },
    {
        "name": "Duda Rocha",
        "slug": "duda-rocha",
        "colors": ("#43e97b", "#0b5345"),
        "featured": None,
        "description": "Vida no campo, trilhas e cachoeiras.",
    },
]
POST_TITLES = [
    "Ensaio na praia",
    "Bastidores do estúdio",
    "Pôr do sol no terraço",
    "Look do dia",
    "Viagem para Paraty",
    "Sessão especial de fim de semana",
]
POSTS_PER_CREATOR = len(POST_TITLES)


def _hex(color: str) -> tuple[int, int, int]:
    color = color.lstrip("#")
    return tuple(int(color[i : i + 2], 16) for i in (0, 2, 4))


def placeholder_image(size: tuple[int, int], colors: tuple[str, str], text: str, *, fmt: str = "JPEG") -> bytes:
    """A diagonal gradient between two colours with `text` centred on it."""
    width, height = size
    ramp = Image.linear_gradient("L")  # 256×256, black at the top to white at the bottom
    mask = ImageChops.add(ramp.resize(size), ramp.rotate(90).resize(size), scale=2)  # diagonal
    image = Image.composite(Image.new("RGB", size, _hex(colors[1])), Image.new("RGB", size, _hex(colors[0])), mask)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(12, min(width, height) // 3))
    box = draw.textbbox((0, 0), text, font=font)
    position = ((width - (box[2] - box[0])) / 2 - box[0], (height - (box[3] - box[1])) / 2 - box[1])
    draw.text(position, text, font=font, fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0))
    out = io.BytesIO()
    image.save(out, format=fmt, quality=80)
    return out.getvalue()


def _initials(name: str) -> str:
    return "".join(part[0] for part in name.split()[:2]).upper()


def load_demo_catalog() -> str:
    """Create (or find) the demo catalog; returns a summary like ", 4 creators, 24 posts"."""
    now = timezone.now()
    creators = []
    for index, spec in enumerate(CREATORS):
        creator, _ = Creator.objects.get_or_create(
            slug=spec["slug"],
            defaults={
                "name": spec["name"],
                "description": spec["description"],
                "is_featured": spec["featured"] is not None,
                "featured_order": spec["featured"] or 0,
            },
        )
        initials = _initials(spec["name"])
        changed = []
        for field, size in (("icon", (256, 256)), ("banner", (1200, 400)), ("thumbnail", (600, 800))):
            if not getattr(creator, field):
                data = placeholder_image(size, spec["colors"], initials)
                getattr(creator, field).save(f"{spec['slug']}-{field}.jpg", ContentFile(data), save=False)
                changed.append(field)
        if changed:
            creator.save(update_fields=changed)
        creators.append(creator)

        for number, title in enumerate(POST_TITLES):
            post, created = Post.objects.get_or_create(
                creator=creator,
                title=title,
                defaults={"published_at": now - timedelta(days=number * 3 + index, hours=index)},
            )
            if created or not post.media.exists():
                for position in range(2 + (number + index) % 3):  # 2 to 4 images
                    data = placeholder_image((480, 600), spec["colors"][::-1] if position % 2 else spec["colors"], f"{initials} {number + 1}.{position + 1}")
                    item = Media(post=post, type=Media.Type.IMAGE, position=position)
                    item.file.save(f"{spec['slug']}-{number + 1}-{position + 1}.jpg", ContentFile(data), save=False)
                    item.save()
                    if position == 0 and not post.preview:
                        post.preview.save(f"{spec['slug']}-{number + 1}.jpg", ContentFile(make_preview(data)), save=False)
                        post.save(update_fields=["preview"])
    refresh_post_counts(creator_ids=[c.pk for c in creators])
    posts = Post.objects.filter(creator__in=creators).count()
    return f", {len(creators)} creators, {posts} posts"
