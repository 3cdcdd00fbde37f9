"""
Celery doors to the catalog services.

Contract §6 names the publish task `whitelabel.tasks.publish`; it lives here,
next to the code it runs, and is registered under that name (as well as
`catalog.tasks.publish`).
"""

from celery import shared_task

from catalog.services import previews, publishing


def _publish(*, creator: str | None = None, creators: list[str] | None = None, publish_all: bool = False) -> str:
    names = list(creators or []) + ([creator] if creator else [])
    result = publishing.publish_whitelabel(folder_names=names or None, publish_all=publish_all)
    return result.summary()


@shared_task(name="catalog.tasks.publish")
def publish(*, creator: str | None = None, creators: list[str] | None = None, publish_all: bool = False) -> str:
    """Publish white-label creators (by folder name or slug), or all of them."""
    return _publish(creator=creator, creators=creators, publish_all=publish_all)


@shared_task(name="whitelabel.tasks.publish")
def publish_whitelabel(*, creator: str | None = None, creators: list[str] | None = None, publish_all: bool = False) -> str:
    """The contract's name for `catalog.tasks.publish`."""
    return _publish(creator=creator, creators=creators, publish_all=publish_all)


@shared_task(name="catalog.tasks.generate_previews")
def generate_previews(*, post_ids: list[int]) -> int:
    return previews.generate_previews(post_ids=post_ids)
