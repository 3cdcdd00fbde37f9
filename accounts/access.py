"""
The one question the rest of the code asks about a user's access to paid
content. The rule itself ("an active subscription, or past due within grace")
lives in billing's `SubscriptionQuerySet.granting_access`.
"""

from django.utils import timezone


def user_has_access(user, *, now=None) -> bool:
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if user.age_confirmed_at is None:
        return False  # contract §8: access only once the user's age is confirmed
    from billing.models import Subscription

    return Subscription.objects.granting_access(now or timezone.now()).filter(user_id=user.pk).exists()
