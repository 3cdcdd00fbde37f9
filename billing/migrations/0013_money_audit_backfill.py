"""
Fill the money ledger for what the database held before it existed, from what
the rows say, in set-based INSERT … SELECT statements (so it runs in minutes on
millions of checkouts). Idempotent: each statement skips what already has its
rows, so running it twice (or on a database partly written by the new code)
adds nothing twice.

- paid and refunded checkouts → their payment (a void charge kept for a person
  → listed), with its credit and discount; refunded ones → a refund (a
  chargeback when the gateway said so);
- duplicate, void-charge, partial and paid marketplace-mismatch items → listed;
- paid marketplace (Dias) purchases → a payment keyed by the marketplace id;
- each started subscription → its period [start_date, end_date) as a grant
  (`backfill`, why "backfilled"), one per paid checkout of it (or one alone:
  an admin's or the marketplace's), then a revoke from when it ended when it
  ended before its end date (a refund, an admin, a withdrawal, a deletion);
- deleted accounts → their deletion marker, written last.

The history of periods (which payment bought which days) is not in the old
rows: the backfilled grants say so (`backfill`), and the audit reads them
leniently (no back-to-back or duration check on them).
"""

from django.db import migrations

L, C, S, R = "billing_ledgerentry", "billing_checkout", "billing_subscription", "billing_reconciliationitem"

VOIDED = f"""(c.subscription_id IS NULL AND c.user_id IS NOT NULL AND EXISTS (
    SELECT 1 FROM {R} r WHERE r.checkout_id = c.id AND r.kind = 'voided_charge_paid'))"""
HAS_OWN_MONEY = f"""EXISTS (SELECT 1 FROM {L} m WHERE m.checkout_id = c.id AND (
    m.kind = 'payment' OR (m.kind = 'listed' AND m.transaction_id = c.paid_transaction_id)))"""
PAID_AT = "COALESCE(c.paid_at, c.updated_at)"
COLUMNS = "(kind, cause, amount_cents, gateway_id, transaction_id, checkout_id, subscription_id, user_id, coupon_id, reconciliation_item_id, note, starts_at, ends_at, created_at)"

STATEMENTS = [
    # Credit and discount first: they are written only beside a payment the next statement adds.
    f"""INSERT INTO {L} {COLUMNS}
    SELECT 'credit', 'upgrade', c.credit_cents, c.gateway_id, COALESCE(NULLIF(c.paid_transaction_id, ''), c.gateway_transaction_id),
           c.id, c.subscription_id, c.user_id, NULL, NULL, '', NULL, NULL, {PAID_AT}
    FROM {C} c WHERE c.status IN ('paid', 'refunded') AND c.credit_cents > 0 AND NOT {VOIDED} AND NOT {HAS_OWN_MONEY}""",
    f"""INSERT INTO {L} {COLUMNS}
    SELECT 'discount', 'checkout', c.discount_cents, c.gateway_id, COALESCE(NULLIF(c.paid_transaction_id, ''), c.gateway_transaction_id),
           c.id, c.subscription_id, c.user_id, c.coupon_id, NULL, '', NULL, NULL, {PAID_AT}
    FROM {C} c WHERE c.status IN ('paid', 'refunded') AND c.discount_cents > 0 AND NOT {VOIDED} AND NOT {HAS_OWN_MONEY}""",
    f"""INSERT INTO {L} {COLUMNS}
    SELECT CASE WHEN {VOIDED} THEN 'listed' ELSE 'payment' END, CASE WHEN {VOIDED} THEN 'voided' ELSE 'checkout' END,
           c.total_cents, c.gateway_id,
           CASE WHEN {VOIDED} THEN c.paid_transaction_id ELSE COALESCE(NULLIF(c.paid_transaction_id, ''), c.gateway_transaction_id) END,
           c.id, c.subscription_id, c.user_id, NULL,
           (SELECT MIN(r.id) FROM {R} r WHERE r.checkout_id = c.id AND r.kind = 'voided_charge_paid' AND {VOIDED}),
           '', NULL, NULL, {PAID_AT}
    FROM {C} c WHERE c.status IN ('paid', 'refunded') AND NOT {HAS_OWN_MONEY}""",
    f"""INSERT INTO {L} {COLUMNS}
    SELECT CASE WHEN c.gateway_status IN ('chargedback', 'in_protest') THEN 'chargeback' ELSE 'refund' END,
           CASE WHEN c.gateway_status IN ('chargedback', 'in_protest') THEN 'chargeback' ELSE 'refund' END,
           c.total_cents, c.gateway_id, COALESCE(NULLIF(c.paid_transaction_id, ''), c.gateway_transaction_id),
           c.id, c.subscription_id, c.user_id, NULL, NULL, '', NULL, NULL, COALESCE(c.refunded_at, c.updated_at)
    FROM {C} c WHERE c.status = 'refunded'
      AND NOT EXISTS (SELECT 1 FROM {L} m WHERE m.checkout_id = c.id AND m.kind IN ('refund', 'chargeback'))""",
    f"""INSERT INTO {L} {COLUMNS}
    SELECT 'listed', CASE r.kind WHEN 'duplicate_payment' THEN 'duplicate' WHEN 'voided_charge_paid' THEN 'voided'
                                 WHEN 'partial_payment' THEN 'partial' ELSE 'amount_mismatch' END,
           COALESCE(r.amount_cents, 0), r.gateway_id, r.transaction_id, r.checkout_id, NULL, NULL, NULL, r.id, '', NULL, NULL, r.found_at
    FROM {R} r
    WHERE (r.kind IN ('duplicate_payment', 'voided_charge_paid')
           OR (r.kind = 'partial_payment' AND r.amount_cents IS NOT NULL)
           OR (r.kind = 'marketplace_amount_mismatch' AND r.detail ->> 'status' = 'paid'))
      AND NOT EXISTS (SELECT 1 FROM {L} m WHERE m.reconciliation_item_id = r.id)""",
    f"""INSERT INTO {L} {COLUMNS}
    SELECT 'payment', 'marketplace', s.external_amount_cents,
           (SELECT g.id FROM billing_paymentgateway g WHERE g.kind = 'dias'), s.external_id,
           NULL, s.id, s.user_id, NULL, NULL, '', NULL, NULL, COALESCE(s.start_date, s.last_transition_at)
    FROM {S} s
    WHERE s.external_id <> '' AND s.status <> 'pending' AND s.external_amount_cents IS NOT NULL
      AND (s.start_date IS NOT NULL OR s.last_reason = 'paid') AND s.plan_match_rule IN ('exact_price', 'nearest_price')
      AND NOT EXISTS (SELECT 1 FROM {L} m WHERE m.kind = 'payment' AND m.cause = 'marketplace' AND m.transaction_id = s.external_id)""",
    # The periods: one grant per paid checkout of a subscription that has no days in the ledger yet …
    f"""INSERT INTO {L} {COLUMNS}
    SELECT 'grant', 'backfill', 0, NULL, '', c.id, s.id, s.user_id, NULL, NULL, 'backfilled', s.start_date, s.end_date, s.created_at
    FROM {S} s JOIN {C} c ON c.subscription_id = s.id AND c.status IN ('paid', 'refunded') AND c.user_id IS NOT NULL
    WHERE s.start_date IS NOT NULL AND s.end_date IS NOT NULL AND s.status <> 'pending'
      AND NOT EXISTS (SELECT 1 FROM {L} m WHERE m.subscription_id = s.id AND m.kind IN ('grant', 'revoke'))""",
    # … or one alone (an admin's, the marketplace's) …
    f"""INSERT INTO {L} {COLUMNS}
    SELECT 'grant', 'backfill', 0, NULL, '', NULL, s.id, s.user_id, NULL, NULL, 'backfilled', s.start_date, s.end_date, s.created_at
    FROM {S} s
    WHERE s.start_date IS NOT NULL AND s.end_date IS NOT NULL AND s.status <> 'pending'
      AND NOT EXISTS (SELECT 1 FROM {L} m WHERE m.subscription_id = s.id AND m.kind IN ('grant', 'revoke'))""",
    # … then the access taken back when it ended before its end date.
    f"""INSERT INTO {L} {COLUMNS}
    SELECT 'revoke', 'backfill', 0, NULL, '', NULL, s.id, s.user_id, NULL, NULL, 'backfilled', s.last_transition_at, s.end_date,
           s.last_transition_at
    FROM {S} s
    WHERE s.status IN ('expired', 'canceled', 'refunded') AND s.end_date > s.last_transition_at
      AND EXISTS (SELECT 1 FROM {L} g WHERE g.subscription_id = s.id AND g.kind = 'grant' AND g.cause = 'backfill')
      AND NOT EXISTS (SELECT 1 FROM {L} m WHERE m.subscription_id = s.id AND m.kind = 'revoke')""",
    # Deleted accounts (legal.services.delete_account: the anonymous address), last: nothing above is "after" them.
    f"""INSERT INTO {L} {COLUMNS}
    SELECT 'revoke', 'erasure', 0, NULL, '', NULL, NULL, u.id, NULL, NULL, 'backfilled', NOW(), NOW(), NOW()
    FROM accounts_user u
    WHERE u.email LIKE 'deleted-%%@deleted.invalid'
      AND NOT EXISTS (SELECT 1 FROM {L} m WHERE m.user_id = u.id AND m.kind = 'revoke' AND m.cause = 'erasure')""",
]


def backfill(apps=None, schema_editor=None, *, connection=None):
    """Run every statement; returns the rows each added (the test reads them)."""
    connection = connection or schema_editor.connection
    if connection.vendor != "postgresql":
        # The statements are PostgreSQL's. Only `make run`'s development database is SQLite: it is made
        # fresh, and load_demo writes its ledger through the services.
        return []
    added = []
    with connection.cursor() as cursor:
        for sql in STATEMENTS:
            cursor.execute(sql)
            added.append(cursor.rowcount)
    return added


class Migration(migrations.Migration):
    dependencies = [("billing", "0012_money_audit_ledger"), ("accounts", "0004_rights")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop, elidable=False)]
