"""
`user_has_access` runs billing's rule compiled once per process
(billing/access.py): it must answer exactly what the queryset answers.
"""

from datetime import timedelta

import pytest
from django.db.models import Q
from django.utils import timezone

from billing import access
from billing.access import user_has_access
from billing.models import Subscription
from tests.factories import SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db

STATES = [
    (status, end_days, cancel)
    for status in Subscription.Status.values
    for end_days in (-10, -4, -2, -0.001, 0.001, 2, 30)
    for cancel in (False, True)
]


@pytest.fixture(autouse=True)
def _fresh_compilation():
    access._compiled.clear()
    yield
    access._compiled.clear()


def _orm(user, now):
    return Subscription.objects.granting_access(now).filter(user_id=user.pk).exists()


def test_the_compiled_rule_answers_what_the_queryset_answers():
    now = timezone.now()
    users = []
    for status, end_days, cancel in STATES:
        user = UserFactory()
        SubscriptionFactory(
            user=user,
            status=status,
            start_date=now - timedelta(days=60),
            end_date=now + timedelta(days=end_days),
            cancel_at_period_end=cancel,
        )
        users.append(user)
    users.append(UserFactory())  # no subscription at all

    for at in (now, now + timedelta(days=1), now - timedelta(days=5)):
        answers = [(user_has_access(user, now=at), _orm(user, at)) for user in users]
        assert all(compiled == orm for compiled, orm in answers)
        assert any(compiled for compiled, _ in answers) and not all(compiled for compiled, _ in answers)


def test_the_grace_days_setting_is_followed(settings):
    user = UserFactory()
    SubscriptionFactory(user=user, status=Subscription.Status.PAST_DUE, end_date=timezone.now() - timedelta(days=4))
    settings.SUBSCRIPTION_GRACE_DAYS = 3
    assert user_has_access(user) is False
    settings.SUBSCRIPTION_GRACE_DAYS = 5
    assert user_has_access(user) is True


def test_one_query_and_no_access_without_a_confirmed_age(django_assert_num_queries):
    user = SubscriptionFactory().user
    with django_assert_num_queries(1):
        assert user_has_access(user) is True
    user.age_confirmed_at = None
    with django_assert_num_queries(0):
        assert user_has_access(user) is False


def test_a_rule_that_derives_another_date_from_now_is_asked_through_the_orm(monkeypatch):
    """The stand-ins cannot follow `now - 1 day` computed inside the rule: no compiled shortcut then."""
    user = UserFactory()
    SubscriptionFactory(user=user, status=Subscription.Status.ACTIVE, end_date=timezone.now() + timedelta(hours=12))

    def stricter(now):
        return Subscription.objects.filter(Q(status=Subscription.Status.ACTIVE, end_date__gt=now + timedelta(days=1)))

    monkeypatch.setattr(access, "_granting_access", stricter)

    assert access._compile("default") is None
    assert user_has_access(user) is False  # through the ORM: ends within the day
