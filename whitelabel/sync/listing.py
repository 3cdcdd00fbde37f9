"""The bucket's listing: ListObjectsV2 pages, read ahead in a background thread."""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Self

from django.conf import settings


def page_size() -> int:
    return settings.WHITELABEL_PAGE_SIZE


def list_pages(*, client, bucket: str, prefix: str, size: int | None = None) -> Iterator[list[dict]]:
    """ListObjectsV2 pages below `prefix`: each a list of {Key, Size, ETag, LastModified}."""
    paginator = client.get_paginator("list_objects_v2")
    kwargs = {"Bucket": bucket, "PaginationConfig": {"PageSize": size or page_size()}}
    if prefix:
        kwargs["Prefix"] = prefix
    for page in paginator.paginate(**kwargs):
        yield page.get("Contents", [])


class prefetch:
    """
    Iterate `pages` in a background thread, up to `depth` items ahead, starting at once: the
    listing of page N+1 overlaps the work on page N (and the preload before page 1).
    The producer's exception is raised in the consumer, in order. Use as a context manager.
    """

    def __init__(self, pages: Iterable, depth: int = 2):
        self._buffer: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(pages,), name="whitelabel-list", daemon=True)
        self._thread.start()

    def _produce(self, pages: Iterable) -> None:
        try:
            for item in pages:
                while not self._stop.is_set():
                    try:
                        self._buffer.put(("item", item), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
            self._buffer.put(("done", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._buffer.put(("error", exc))

    def __iter__(self) -> Iterator:
        while True:
            kind, item = self._buffer.get()
            if kind == "item":
                yield item
            elif kind == "error":
                raise item
            else:
                return

    def close(self) -> None:
        self._stop.set()
        # Unblock a producer waiting on a full queue, then let it finish its current request.
        while self._thread.is_alive():
            try:
                self._buffer.get_nowait()
            except queue.Empty:
                self._thread.join(timeout=0.2)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


@contextmanager
def short_gil_switch_interval(seconds: float = 0.0005):
    """
    While the listing thread parses XML (CPU-bound), a thread doing database round trips (the
    writer, and the planner's one SELECT a page) waits up to the interpreter's switch interval
    (5 ms) to get the GIL back after each answer. The writer makes a few round trips per page
    and is what a first sync waits for, so a shorter interval for the sync's duration keeps it
    up with the listing. Process-wide, hence restored afterwards.
    """
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, seconds))
    try:
        yield
    finally:
        sys.setswitchinterval(before)
