from django.db import models
from django.db.models import Q

from billing.periods import grace_start


class SubscriptionQuerySet(models.QuerySet):
    def live(self):
        """At most one per user (a partial unique constraint): trialing, active or past due."""
        return self.filter(status__in=self.model.LIVE_STATUSES)

    def granting_access(self, now):
        """
        The access rule: active or trialing and within the period, or (active
        or past due) within the grace days after `end_date` while a renewal is
        unpaid. A subscription canceled at period end, or a trial, gets no
        grace. Independent of when the sweep last ran.
        """
        Status = self.model.Status
        return self.filter(
            Q(status__in=[Status.ACTIVE, Status.TRIALING], end_date__gt=now)
            | Q(status__in=[Status.ACTIVE, Status.PAST_DUE], cancel_at_period_end=False, end_date__gt=grace_start(now))
        )


class CheckoutQuerySet(models.QuerySet):
    def pending(self):
        return self.filter(status=self.model.Status.PENDING)

    def unclaimed(self):
        """Guest payments waiting for their e-mail's account to be confirmed: paid, no owner yet."""
        return self.filter(status=self.model.Status.PAID, user__isnull=True, subscription__isnull=True)

    def of_customer(self, user):
        """
        A customer's checkouts: their own, and guest checkouts of their e-mail once
        it is confirmed (an unconfirmed account may be a squatter's: contract §3).
        """
        mine = Q(user_id=user.pk)
        if user.email_confirmed_at is not None:
            mine |= Q(user__isnull=True, customer_email__iexact=user.email)
        return self.filter(mine)
