"""What a sync reports: its counts, its result, and the errors that stop it before it starts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields

from django.utils.translation import gettext as _

from whitelabel.models import SyncRun


class SyncError(Exception):
    """A sync that did not start; the message is for people."""


class SyncDisabled(SyncError):
    pass


class SyncAlreadyRunning(SyncError):
    pass


def disabled_message() -> str:
    return _("White-label sync disabled: WHITELABEL_BUCKET is not set.")


@dataclass
class SyncCounts:
    pages: int = 0
    keys_listed: int = 0
    skipped: Counter = field(default_factory=Counter)
    creators_created: int = 0
    creators_updated: int = 0
    creators_deleted: int = 0
    posts_created: int = 0
    posts_updated: int = 0
    posts_deleted: int = 0
    media_created: int = 0
    media_updated: int = 0
    media_deleted: int = 0

    @property
    def keys_skipped(self) -> int:
        return sum(self.skipped.values())

    @property
    def rows_written(self) -> int:
        return (
            self.creators_created
            + self.creators_updated
            + self.creators_deleted
            + self.posts_created
            + self.posts_updated
            + self.posts_deleted
            + self.media_created
            + self.media_updated
            + self.media_deleted
        )

    def add(self, other: SyncCounts) -> None:
        """Add `other` (one page's counts, once that page is written) to these."""
        for f in fields(self):
            if f.name == "skipped":
                self.skipped.update(other.skipped)
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def copy(self) -> SyncCounts:
        copied = SyncCounts()
        copied.add(self)
        return copied

    def as_run_fields(self) -> dict:
        return {
            "pages": self.pages,
            "keys_listed": self.keys_listed,
            "keys_skipped": self.keys_skipped,
            "skipped_by_reason": dict(sorted(self.skipped.items())),
            "creators_created": self.creators_created,
            "creators_updated": self.creators_updated,
            "creators_deleted": self.creators_deleted,
            "posts_created": self.posts_created,
            "posts_updated": self.posts_updated,
            "posts_deleted": self.posts_deleted,
            "media_created": self.media_created,
            "media_updated": self.media_updated,
            "media_deleted": self.media_deleted,
            "rows_written": self.rows_written,
        }


@dataclass
class SyncResult:
    counts: SyncCounts
    seconds: float
    dry_run: bool
    run: SyncRun | None = None

    @property
    def keys_per_second(self) -> float:
        return self.counts.keys_listed / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        c = self.counts
        text = _(
            "%(mode)s: %(keys)d keys listed (%(skipped)d skipped) in %(seconds).1fs, %(rate).0f keys/s; "
            "creators +%(cc)d ~%(cu)d -%(cd)d, posts +%(pc)d ~%(pu)d -%(pd)d, media +%(mc)d ~%(mu)d -%(md)d; "
            "%(rows)d rows written."
        ) % {
            "mode": _("Dry run (nothing written)") if self.dry_run else _("Sync succeeded"),
            "keys": c.keys_listed,
            "skipped": c.keys_skipped,
            "seconds": self.seconds,
            "rate": self.keys_per_second,
            "cc": c.creators_created,
            "cu": c.creators_updated,
            "cd": c.creators_deleted,
            "pc": c.posts_created,
            "pu": c.posts_updated,
            "pd": c.posts_deleted,
            "mc": c.media_created,
            "mu": c.media_updated,
            "md": c.media_deleted,
            "rows": 0 if self.dry_run else c.rows_written,
        }
        return text


ProgressCallback = Callable[[SyncCounts, float], None]
