
from datetime import timedelta

from django.db import migrations, models


def schedule_open_events(apps, schema_editor):
    """Events waiting for a retry keep their place: the backoff the old task computed, now stored."""
    WebhookEvent = apps.get_model("billing", "WebhookEvent")
    for event in WebhookEvent.objects.filter(outcome__in=["failed", "received"]).iterator():
        if event.outcome == "failed":
            due = (event.processed_at or event.received_at) + timedelta(minutes=2 ** max(event.attempts, 0))
        else:
            due = (event.processed_at or event.received_at) + timedelta(minutes=10)
        WebhookEvent.objects.filter(pk=event.pk).update(next_attempt_at=due)


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0003_lifecycle_finance_dashboard'),
    ]

    operations = [
        migrations.AddField(
            model_name='checkout',
            name='paid_amount_cents',
            field=models.PositiveIntegerField(blank=True, help_text='What the gateway says arrived of a partial payment; never grants access.', null=True, verbose_name='amount received (cents)'),
        ),
        migrations.AddField(
            model_name='reconciliationitem',
            name='amount_cents',
            field=models.PositiveIntegerField(blank=True, help_text='The money this item is about, when known.', null=True, verbose_name='amount (cents)'),
        ),
        migrations.AddField(
            model_name='subscription',
            name='external_amount_cents',
            field=models.PositiveIntegerField(blank=True, help_text='The amount the marketplace announced (PENDING); its PAID must confirm it.', null=True, verbose_name='marketplace amount (cents)'),
        ),
        migrations.AddField(
            model_name='webhookevent',
            name='next_attempt_at',
            field=models.DateTimeField(blank=True, db_index=True, null=True, verbose_name='next attempt at'),
        ),
        migrations.AlterField(
            model_name='reconciliationitem',
            name='kind',
            field=models.CharField(choices=[('missed_payment', 'Paid at the gateway, pending here (fixed)'), ('amount_mismatch', 'Amount differs'), ('status_mismatch', 'Status differs'), ('unknown_transaction', 'Transaction unknown here'), ('partial_payment', 'Partial payment'), ('marketplace_amount_mismatch', 'Marketplace amount mismatch')], max_length=30, verbose_name='kind'),
        ),
        migrations.RunPython(schedule_open_events, migrations.RunPython.noop),
    ]
