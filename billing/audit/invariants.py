"""
The SQL of each money invariant (contract §9): one function per invariant,
each a fixed handful of set-based statements that aggregate in PostgreSQL
and return only violating rows (at most ROW_LIMIT each). billing.audit runs
them all. `since` narrows each statement to the rows written or changed
since then (the subject rows' created_at / updated_at).

Vocabulary shared by the statements:

- a checkout's *own money* is its `payment` ledger row, or the `listed` row
  of the transaction that paid it (a void charge kept for a person, a second
  free trial settled without access); a `listed` row of another transaction
  of the checkout is a duplicate payment, money of its own;
- a subscription's *coverage* is its grants, each cut at the earliest
  `revoke` written after it (a revoke takes access back from its
  `starts_at` on); `covered_to` is the end of the last non-empty piece.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection

from billing.audit.report import ROW_LIMIT, Violation

L = "billing_ledgerentry"
C = "billing_checkout"
S = "billing_subscription"
R = "billing_reconciliationitem"
RR = "billing_refundrequest"
CP = "billing_coupon"
CPP = "billing_coupon_plans"

LIVE = "('trialing', 'active', 'past_due')"
SINCE = "(CAST(%(since)s AS timestamptz) IS NULL OR {column} >= CAST(%(since)s AS timestamptz))"

# A checkout's own money: its payment, or the listed row of the transaction that paid it.
OWN_MONEY = f"""
    SELECT m.checkout_id, COUNT(*) AS n, SUM(m.amount_cents) AS cents
    FROM {L} m JOIN {C} c ON c.id = m.checkout_id
    WHERE m.kind = 'payment' OR (m.kind = 'listed' AND m.cause IN ('voided', 'duplicate') AND m.transaction_id = c.paid_transaction_id)
    GROUP BY m.checkout_id
"""

# Each grant with its effective end (cut by the earliest later revoke of its subscription).
PIECES = f"""
    SELECT p.*, LEAST(p.ends_at, COALESCE(p.cut, p.ends_at)) AS eff_end FROM (
        SELECT e.id, e.subscription_id, e.kind, e.cause, e.checkout_id, e.starts_at, e.ends_at, e.created_at,
               MIN(CASE WHEN e.kind = 'revoke' THEN e.starts_at END) OVER (
                   PARTITION BY e.subscription_id ORDER BY e.id DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
               ) AS cut
        FROM {L} e WHERE e.subscription_id IS NOT NULL AND e.kind IN ('grant', 'revoke')
    ) p
"""

COVER = f"""
    SELECT subscription_id,
           MAX(eff_end) FILTER (WHERE kind = 'grant' AND eff_end > starts_at) AS covered_to,
           COUNT(*) FILTER (WHERE kind = 'grant') AS grants
    FROM ({PIECES}) pieces GROUP BY subscription_id
"""


def _rows(sql: str, params: dict) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} LIMIT {ROW_LIMIT}", params)
        return cursor.fetchall()


def _violations(invariant: int, code: str, message: str, rows: list[tuple], names: tuple[str, ...]) -> list[Violation]:
    """One violation per row: `names` label the row's leading id columns; the rest goes into the message."""
    found = []
    for row in rows:
        ids = {name: [row[i]] for i, name in enumerate(names) if row[i] is not None}
        extra = row[len(names):]
        found.append(Violation(invariant, code, message + (f" {extra}" if extra else ""), ids))
    return found


def check_payments_accounted_once(*, since: datetime | None, now: datetime) -> list[Violation]:
    """§9.1: every paid payment paid one checkout or is listed for a person; never both, never neither."""
    params = {"since": since}
    found = _violations(
        1, "paid_checkout_unaccounted", "a paid checkout has no payment (nor listing) in the ledger",
        _rows(f"""
            SELECT c.id, c.status, c.total_cents FROM {C} c LEFT JOIN ({OWN_MONEY}) own ON own.checkout_id = c.id
            WHERE c.status IN ('paid', 'refunded') AND own.n IS NULL AND {SINCE.format(column="c.updated_at")}
            ORDER BY c.id""", params),
        ("checkout",),
    )
    found += _violations(
        1, "paid_checkout_accounted_twice", "a checkout's money is in the ledger more than once (rows, cents)",
        _rows(f"""
            SELECT c.id, own.n, own.cents FROM {C} c JOIN ({OWN_MONEY}) own ON own.checkout_id = c.id
            WHERE own.n > 1 AND {SINCE.format(column="c.updated_at")} ORDER BY c.id""", params),
        ("checkout",),
    )
    found += _violations(
        1, "transaction_accounted_twice", "one gateway transaction is counted as money more than once (gateway, transaction, rows)",
        _rows(f"""
            SELECT MIN(m.id), m.gateway_id, m.transaction_id, COUNT(*) FROM {L} m
            WHERE m.kind IN ('payment', 'listed') AND m.cause <> 'partial' AND m.transaction_id <> ''
              AND {SINCE.format(column="m.created_at")}
            GROUP BY m.gateway_id, m.transaction_id HAVING COUNT(*) > 1 ORDER BY MIN(m.id)""", params),
        ("ledger",),
    )
    found += _violations(
        1, "listed_money_missing", "money listed for a person is not in the ledger (kind)",
        _rows(f"""
            SELECT r.id, r.checkout_id, r.kind FROM {R} r
            WHERE r.kind IN ('duplicate_payment', 'voided_charge_paid')
              AND NOT EXISTS (SELECT 1 FROM {L} m WHERE m.kind = 'listed' AND m.reconciliation_item_id = r.id)
              AND {SINCE.format(column="r.found_at")}
            ORDER BY r.id""", params),
        ("reconciliation_item", "checkout"),
    )
    found += _violations(
        1, "marketplace_payment_unaccounted", "a paid marketplace purchase has no payment in the ledger (external id)",
        _rows(f"""
            SELECT s.id, s.external_id FROM {S} s
            WHERE s.external_id <> '' AND s.status <> 'pending' AND s.external_amount_cents IS NOT NULL
              AND (s.start_date IS NOT NULL OR s.last_reason = 'paid')
              AND s.plan_match_rule IN ('exact_price', 'nearest_price')
              AND NOT EXISTS (
                  SELECT 1 FROM {L} m WHERE m.kind = 'payment' AND m.cause = 'marketplace' AND m.transaction_id = s.external_id
              )
              AND {SINCE.format(column="s.updated_at")}
            ORDER BY s.id""", params),
        ("subscription",),
    )
    return found


def check_revenue(*, since: datetime | None, now: datetime) -> list[Violation]:
    """§9.2: revenue is Σ paid − Σ refunded and charged back: per checkout, the ledger's net is what the dashboard counts."""
    params = {"since": since}
    return _violations(
        2, "revenue_mismatch", "the ledger's net money of a checkout is not what the dashboard counts (status, net, counted)",
        _rows(f"""
            SELECT c.id, c.status, net.cents, CASE WHEN c.status = 'paid' THEN c.total_cents ELSE 0 END FROM {C} c
            JOIN (
                SELECT x.checkout_id, SUM(x.cents) AS cents FROM (
                    SELECT checkout_id, cents FROM ({OWN_MONEY}) own
                    UNION ALL
                    SELECT m.checkout_id, CASE WHEN m.kind = 'chargeback_reversed' THEN m.amount_cents ELSE -m.amount_cents END
                    FROM {L} m JOIN {C} rc ON rc.id = m.checkout_id
                    WHERE m.kind IN ('refund', 'chargeback', 'chargeback_reversed')
                      -- the money that paid the checkout (not a duplicate's: that is listed money of its own)
                      AND (rc.paid_transaction_id = '' OR m.transaction_id IN ('', rc.paid_transaction_id))
                ) x GROUP BY x.checkout_id
            ) net ON net.checkout_id = c.id
            WHERE net.cents <> CASE WHEN c.status = 'paid' THEN c.total_cents ELSE 0 END
              AND {SINCE.format(column="c.updated_at")}
            ORDER BY c.id""", params),
        ("checkout",),
    )


def check_no_paid_day_lost(*, since: datetime | None, now: datetime) -> list[Violation]:
    """§9.3: a paid checkout's days lie inside its subscription's coverage, back to back; an upgrade replaces only its remainder."""
    params = {"since": since}
    found = _violations(
        3, "coverage_cut_short", "a live subscription ends before the days the ledger says it has (end, covered to)",
        _rows(f"""
            SELECT s.id, s.end_date, cover.covered_to FROM {S} s JOIN ({COVER}) cover ON cover.subscription_id = s.id
            WHERE s.status IN {LIVE} AND s.end_date < cover.covered_to AND {SINCE.format(column="s.updated_at")}
            ORDER BY s.id""", params),
        ("subscription",),
    )
    found += _violations(
        3, "ended_while_covered", "a subscription ended while paid days were left, with nothing revoking them (status, ended, covered to)",
        _rows(f"""
            SELECT s.id, s.status, s.last_transition_at, cover.covered_to FROM {S} s JOIN ({COVER}) cover ON cover.subscription_id = s.id
            WHERE s.status IN ('expired', 'canceled', 'refunded') AND cover.covered_to > s.last_transition_at + INTERVAL '1 second'
              AND {SINCE.format(column="s.updated_at")}
            ORDER BY s.id""", params),
        ("subscription",),
    )
    found += _violations(
        3, "paid_checkout_without_days", "a paid, unrefunded checkout of a subscription bought no days",
        _rows(f"""
            SELECT c.id, c.subscription_id FROM {C} c
            WHERE c.status = 'paid' AND c.subscription_id IS NOT NULL AND c.user_id IS NOT NULL
              AND EXISTS (SELECT 1 FROM {L} m WHERE m.kind = 'payment' AND m.checkout_id = c.id)
              AND NOT EXISTS (SELECT 1 FROM {L} g WHERE g.kind = 'grant' AND g.checkout_id = c.id)
              AND {SINCE.format(column="c.updated_at")}
            ORDER BY c.id""", params),
        ("checkout", "subscription"),
    )
    found += _violations(
        3, "grants_overlap", "a grant starts before the previous one ends: days paid twice for one period (previous end)",
        _rows(f"""
            SELECT g.id, g.subscription_id, g.prev_end FROM (
                SELECT p.*, LAG(p.eff_end) OVER (PARTITION BY p.subscription_id ORDER BY p.id) AS prev_end
                FROM ({PIECES}) p WHERE p.kind = 'grant'
            ) g
            WHERE g.cause NOT IN ('upgrade', 'dispute_reversed', 'backfill') AND g.starts_at < g.prev_end
              AND {SINCE.format(column="g.created_at")}
            ORDER BY g.id""", params),
        ("ledger", "subscription"),
    )
    found += _violations(
        3, "grant_shorter_than_sold", "a payment's days are fewer than the duration it was sold with (days granted, days sold)",
        _rows(f"""
            SELECT g.id, c.id, EXTRACT(EPOCH FROM g.ends_at - g.starts_at) / 86400, c.plan_duration_days
            FROM {L} g JOIN {C} c ON c.id = g.checkout_id
            WHERE g.kind = 'grant' AND g.cause IN ('new', 'renewal', 'late', 'trial', 'free')
              AND g.ends_at - g.starts_at < c.plan_duration_days * INTERVAL '1 day'
              AND {SINCE.format(column="g.created_at")}
            ORDER BY g.id""", params),
        ("ledger", "checkout"),
    )
    return found


def check_no_unpaid_day_given(*, since: datetime | None, now: datetime) -> list[Violation]:
    """§9.4: every day of access is covered by a paid checkout, a trial, or an admin action recorded with who, when and why."""
    params = {"since": since}
    found = _violations(
        4, "access_beyond_coverage", "a live subscription runs past the days the ledger gave it (end, covered to)",
        _rows(f"""
            SELECT s.id, s.end_date, cover.covered_to FROM {S} s LEFT JOIN ({COVER}) cover ON cover.subscription_id = s.id
            WHERE s.status IN {LIVE} AND (cover.covered_to IS NULL OR s.end_date > cover.covered_to)
              AND {SINCE.format(column="s.updated_at")}
            ORDER BY s.id""", params),
        ("subscription",),
    )
    found += _violations(
        4, "grant_from_unpaid_checkout", "days granted for a checkout whose money is not in the ledger (checkout status)",
        _rows(f"""
            SELECT g.id, g.checkout_id, c.status FROM {L} g JOIN {C} c ON c.id = g.checkout_id
            LEFT JOIN ({OWN_MONEY}) own ON own.checkout_id = c.id
            WHERE g.kind = 'grant' AND g.cause <> 'backfill' AND (c.status NOT IN ('paid', 'refunded') OR own.n IS NULL)
              AND {SINCE.format(column="g.created_at")}
            ORDER BY g.id""", params),
        ("ledger", "checkout"),
    )
    found += _violations(
        4, "grant_longer_than_sold", "a payment's days are more than the duration it was sold with (days granted, days sold)",
        _rows(f"""
            SELECT g.id, c.id, EXTRACT(EPOCH FROM g.ends_at - g.starts_at) / 86400, c.plan_duration_days
            FROM {L} g JOIN {C} c ON c.id = g.checkout_id
            WHERE g.kind = 'grant' AND g.cause IN ('new', 'renewal', 'late', 'trial', 'free')
              AND g.ends_at - g.starts_at > c.plan_duration_days * INTERVAL '1 day'
              AND {SINCE.format(column="g.created_at")}
            ORDER BY g.id""", params),
        ("ledger", "checkout"),
    )
    found += _violations(
        4, "admin_grant_unexplained", "days given by an admin action that does not say who and why",
        _rows(f"""
            SELECT g.id, g.subscription_id FROM {L} g
            WHERE g.kind = 'grant' AND g.cause IN ('admin_activate', 'admin_extend') AND (g.actor_id IS NULL OR g.note = '')
              AND {SINCE.format(column="g.created_at")}
            ORDER BY g.id""", params),
        ("ledger", "subscription"),
    )
    found += _violations(
        4, "grant_without_source", "days granted with no payment, trial or admin action behind them (cause)",
        _rows(f"""
            SELECT g.id, g.subscription_id, g.cause FROM {L} g
            WHERE g.kind = 'grant' AND g.checkout_id IS NULL
              AND g.cause NOT IN ('admin_activate', 'admin_extend', 'marketplace', 'backfill')
              AND {SINCE.format(column="g.created_at")}
            ORDER BY g.id""", params),
        ("ledger", "subscription"),
    )
    return found


def check_refund_revokes_only_its_days(*, since: datetime | None, now: datetime) -> list[Violation]:
    """§9.5: a refund or chargeback revokes what that payment bought, and nothing another payment bought."""
    params = {"since": since}
    found = _violations(
        5, "refund_revoked_other_payment", "a refund took back days another, unrefunded payment bought (other checkout)",
        _rows(f"""
            SELECT r.id, r.subscription_id, r.checkout_id, g.checkout_id FROM {L} r
            JOIN {L} g ON g.subscription_id = r.subscription_id AND g.kind = 'grant' AND g.id < r.id
            JOIN {C} gc ON gc.id = g.checkout_id
            WHERE r.kind = 'revoke' AND r.cause IN ('refund', 'chargeback')
              AND g.checkout_id <> r.checkout_id AND gc.status = 'paid' AND g.ends_at > r.starts_at
              AND {SINCE.format(column="r.created_at")}
            ORDER BY r.id""", params),
        ("ledger", "subscription", "checkout"),
    )
    found += _violations(
        5, "refund_left_its_days", "a refunded payment's days are still covered (refunded at, covered to)",
        _rows(f"""
            SELECT m.id, p.subscription_id, m.checkout_id, m.created_at, p.eff_end FROM {L} m
            JOIN ({PIECES}) p ON p.checkout_id = m.checkout_id AND p.kind = 'grant'
            JOIN {C} c ON c.id = m.checkout_id
            WHERE m.kind IN ('refund', 'chargeback') AND c.status = 'refunded' AND p.eff_end > m.created_at + INTERVAL '1 second'
              AND {SINCE.format(column="m.created_at")}
            ORDER BY m.id""", params),
        ("ledger", "subscription", "checkout"),
    )
    return found


def check_credits_and_discounts(*, since: datetime | None, now: datetime) -> list[Violation]:
    """§9.6: credit within the unused value of money paid; coupons within their uses, dates, plans and first-buyer rule."""
    params = {"since": since}
    # The value of each grant: the plan line as paid (after its discount; a trial's or an admin's is 0),
    # the marketplace's amount; pro rata over what was still ahead of the upgrade when it was priced.
    found = _violations(
        6, "credit_exceeds_paid_value", "an upgrade's credit is more than the unused value of what was paid (credit, value)",
        _rows(f"""
            SELECT u.id, u.subscription_id, u.credit_cents, COALESCE(v.value, 0) FROM {C} u
            -- Rows written at the very instant the upgrade was priced (one `now` for several steps) are
            -- before it when the ledger wrote them before the upgrade's own first row.
            LEFT JOIN LATERAL (SELECT MIN(l.id) AS id FROM {L} l WHERE l.checkout_id = u.id) uf ON TRUE
            LEFT JOIN LATERAL (
                SELECT SUM(
                    CASE WHEN g.ends_at <= g.starts_at THEN 0 ELSE
                    (CASE WHEN g.cause = 'marketplace' THEN COALESCE(mp.amount_cents, 0)
                          WHEN gc.id IS NOT NULL AND g.cause IN ('new', 'renewal', 'late', 'upgrade', 'free', 'backfill', 'dispute_reversed')
                               THEN gc.plan_price_cents - gc.discount_cents
                          WHEN g.cause = 'backfill' THEN (
                               SELECT p.price_cents FROM {S} s2 JOIN billing_plan p ON p.id = s2.plan_id WHERE s2.id = g.subscription_id)
                          ELSE 0 END)
                    * EXTRACT(EPOCH FROM LEAST(g.ends_at, COALESCE(cut.at, g.ends_at)) - GREATEST(g.starts_at, u.created_at))
                    / EXTRACT(EPOCH FROM g.ends_at - g.starts_at) END
                ) + COUNT(*) AS value
                FROM {L} g
                LEFT JOIN {C} gc ON gc.id = g.checkout_id
                LEFT JOIN {L} mp ON g.cause = 'marketplace' AND mp.kind = 'payment' AND mp.cause = 'marketplace'
                    AND mp.subscription_id = g.subscription_id AND mp.created_at = g.created_at
                LEFT JOIN LATERAL (
                    SELECT MIN(r.starts_at) AS at FROM {L} r
                    WHERE r.subscription_id = g.subscription_id AND r.kind = 'revoke' AND r.id > g.id
                      AND (r.created_at < u.created_at OR (r.created_at = u.created_at AND r.id < uf.id))
                      AND r.checkout_id IS DISTINCT FROM u.id
                ) cut ON TRUE
                WHERE g.subscription_id = u.subscription_id AND g.kind = 'grant'
                  AND (g.created_at < u.created_at OR (g.created_at = u.created_at AND g.id < uf.id))
                  AND g.checkout_id IS DISTINCT FROM u.id
                  AND LEAST(g.ends_at, COALESCE(cut.at, g.ends_at)) > u.created_at
            ) v ON TRUE
            WHERE u.purpose = 'upgrade' AND u.credit_cents > 0 AND u.status IN ('paid', 'refunded')
              AND u.credit_cents > COALESCE(v.value, 0) AND {SINCE.format(column="u.updated_at")}
            ORDER BY u.id""", params),
        ("checkout", "subscription"),
    )
    found += _violations(
        6, "coupon_over_max_uses", "a coupon was paid for more times than its maximum (uses paid, maximum)",
        _rows(f"""
            SELECT cp.id, COUNT(DISTINCT d.checkout_id), cp.max_uses FROM {CP} cp JOIN {L} d ON d.coupon_id = cp.id AND d.kind = 'discount'
            WHERE cp.max_uses IS NOT NULL GROUP BY cp.id, cp.max_uses HAVING COUNT(DISTINCT d.checkout_id) > cp.max_uses
            ORDER BY cp.id""", params),
        ("coupon",),
    )
    found += _violations(
        6, "coupon_outside_dates", "a coupon discounted a checkout sold (or reopened) outside its dates",
        _rows(f"""
            SELECT d.id, d.checkout_id, d.coupon_id FROM {L} d JOIN {C} c ON c.id = d.checkout_id JOIN {CP} cp ON cp.id = d.coupon_id
            WHERE d.kind = 'discount' AND c.purpose = 'new' AND (
                c.created_at < cp.starts_at OR (cp.ends_at IS NOT NULL AND GREATEST(c.created_at, c.reopened_at) > cp.ends_at)
            ) AND {SINCE.format(column="d.created_at")}
            ORDER BY d.id""", params),
        ("ledger", "checkout", "coupon"),
    )
    found += _violations(
        6, "coupon_on_other_plan", "a coupon discounted a plan it does not name",
        _rows(f"""
            SELECT d.id, d.checkout_id, d.coupon_id FROM {L} d JOIN {C} c ON c.id = d.checkout_id
            WHERE d.kind = 'discount' AND EXISTS (SELECT 1 FROM {CPP} x WHERE x.coupon_id = d.coupon_id)
              AND NOT EXISTS (SELECT 1 FROM {CPP} x WHERE x.coupon_id = d.coupon_id AND x.plan_id = c.plan_id)
              AND {SINCE.format(column="d.created_at")}
            ORDER BY d.id""", params),
        ("ledger", "checkout", "coupon"),
    )
    found += _violations(
        6, "new_only_coupon_for_returning_buyer", "a new-subscribers-only coupon went to a buyer who had paid before (earlier checkout)",
        _rows(f"""
            SELECT d.id, d.checkout_id, d.coupon_id, prior.id FROM {L} d
            JOIN {C} c ON c.id = d.checkout_id JOIN {CP} cp ON cp.id = d.coupon_id
            JOIN LATERAL (
                SELECT e.id FROM {C} e JOIN {L} p ON p.checkout_id = e.id AND p.kind = 'payment' AND p.amount_cents > 0
                WHERE e.id <> c.id AND p.id < d.id AND (
                    (c.user_id IS NOT NULL AND e.user_id = c.user_id) OR e.customer_email = c.customer_email
                    OR (c.customer_document_digest <> '' AND e.customer_document_digest = c.customer_document_digest)
                ) LIMIT 1
            ) prior ON TRUE
            WHERE d.kind = 'discount' AND cp.new_subscribers_only AND c.purpose = 'new' AND {SINCE.format(column="d.created_at")}
            ORDER BY d.id""", params),
        ("ledger", "checkout", "coupon"),
    )
    return found


def check_withdrawal_bounds(*, since: datetime | None, now: datetime) -> list[Violation]:
    """§7: a withdrawal refunds at most what was paid, within WITHDRAWAL_DAYS of the first payment above zero."""
    params = {"since": since, "window": timedelta(days=settings.WITHDRAWAL_DAYS)}
    found = _violations(
        7, "withdrawal_refunds_more_than_paid", "a withdrawal asks back more than was paid (asked, paid)",
        _rows(f"""
            SELECT rr.subscription_id, SUM(rr.amount_cents), COALESCE(MAX(paid.cents), 0) FROM {RR} rr
            LEFT JOIN (
                SELECT c.subscription_id, SUM(m.amount_cents) AS cents FROM {L} m JOIN {C} c ON c.id = m.checkout_id
                WHERE m.kind = 'payment' GROUP BY c.subscription_id
            ) paid ON paid.subscription_id = rr.subscription_id
            WHERE {SINCE.format(column="rr.requested_at")}
            GROUP BY rr.subscription_id HAVING SUM(rr.amount_cents) > COALESCE(MAX(paid.cents), 0)
            ORDER BY rr.subscription_id""", params),
        ("subscription",),
    )
    found += _violations(
        7, "withdrawal_after_window", "a withdrawal was accepted after its window (requested at, first payment above zero)",
        _rows(f"""
            SELECT rr.id, rr.subscription_id, rr.requested_at, first.paid_at FROM {RR} rr
            LEFT JOIN (
                SELECT c.subscription_id, MIN(c.paid_at) AS paid_at FROM {C} c
                JOIN {L} m ON m.checkout_id = c.id AND m.kind = 'payment' AND m.amount_cents > 0
                GROUP BY c.subscription_id
            ) first ON first.subscription_id = rr.subscription_id
            WHERE (first.paid_at IS NULL OR rr.requested_at > first.paid_at + CAST(%(window)s AS interval))
              AND {SINCE.format(column="rr.requested_at")}
            ORDER BY rr.id""", params),
        ("refund_request", "subscription"),
    )
    return found


def check_nothing_reaches_deleted_accounts(*, since: datetime | None, now: datetime) -> list[Violation]:
    """§9.8: after an account's deletion, money for it is listed for a refund, never a payment nor days."""
    params = {"since": since}
    return _violations(
        8, "paid_after_deletion", "money or days reached an account after it was deleted (kind)",
        _rows(f"""
            SELECT m.id, m.user_id, m.checkout_id, m.kind FROM {L} m
            JOIN {L} gone ON gone.user_id = m.user_id AND gone.kind = 'revoke' AND gone.cause = 'erasure' AND gone.id < m.id
            WHERE m.kind IN ('payment', 'grant') AND {SINCE.format(column="m.created_at")}
            ORDER BY m.id""", params),
        ("ledger", "user", "checkout"),
    )


CHECKS = [
    check_payments_accounted_once,
    check_revenue,
    check_no_paid_day_lost,
    check_no_unpaid_day_given,
    check_refund_revokes_only_its_days,
    check_credits_and_discounts,
    check_withdrawal_bounds,
    check_nothing_reaches_deleted_accounts,
]
