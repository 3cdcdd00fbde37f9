"""What the money audit returns: violations of contract §9, each naming the rows involved."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# The most rows one check reports: enough to find the cause, bounded for a database gone very wrong.
ROW_LIMIT = 50


@dataclass(frozen=True)
class Violation:
    invariant: int
    code: str
    message: str
    rows: dict[str, list] = field(default_factory=dict)

    def __str__(self):
        names = " ".join(f"{kind}={','.join(str(pk) for pk in pks)}" for kind, pks in self.rows.items() if pks)
        return f"[§9.{self.invariant} {self.code}] {self.message} {names}".rstrip()


@dataclass
class AuditReport:
    violations: list[Violation] = field(default_factory=list)
    since: datetime | None = None
    now: datetime | None = None
    queries: int = 0
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return not self.violations

    def counts(self) -> dict[str, int]:
        counts = {str(number): 0 for number in range(1, 9)}
        for violation in self.violations:
            counts[str(violation.invariant)] += 1
        return counts

    def summary(self) -> str:
        per = ", ".join(f"§9.{number}: {count}" for number, count in self.counts().items() if count)
        return f"money audit: {len(self.violations)} violation(s)" + (f" ({per})" if per else "")
