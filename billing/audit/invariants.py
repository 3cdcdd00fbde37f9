"""The SQL of each money invariant (contract §9), one function per invariant; billing.audit runs them all."""

from __future__ import annotations

CHECKS = []
