"""factory_boy factories shared by every app's tests."""

from datetime import date, timedelta

import factory
from django.utils import timezone

from billing.models import Checkout, OrderBump, PaymentGateway, Plan, Subscription


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "accounts.User"
        django_get_or_create = ("email",)

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Faker("name", locale="pt_BR")
    password = factory.django.Password("correct-horse-battery")
    # Confirmed by default (like every account that existed before confirmation was asked);
    # pass email_confirmed_at=None for a fresh sign-up.
    email_confirmed_at = factory.LazyFunction(timezone.now)
    # Of age and confirmed (like an account that declared its birth date); pass age_confirmed_at=None for one that has not.
    birth_date = date(1990, 5, 17)
    age_confirmed_at = factory.LazyFunction(timezone.now)
    age_confirmed_by = "declaration"


class PlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Plan

    name = factory.Sequence(lambda n: f"Plano {n}")
    price_cents = 2990
    duration_days = 30
    benefits = factory.LazyFunction(lambda: [{"title": "Acesso total", "subtitle": "Todos os criadores", "icon": "star"}])
    cta_text = "Assinar agora"
    accepts_pix = True


class OrderBumpFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderBump

    name = factory.Sequence(lambda n: f"Bônus {n}")
    price_cents = 990


class GatewayFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PaymentGateway
        django_get_or_create = ("kind",)

    kind = PaymentGateway.Kind.SANDBOX
    is_active = True


class CheckoutFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Checkout

    plan = factory.SubFactory(PlanFactory)
    plan_price_cents = factory.LazyAttribute(lambda o: o.plan.price_cents)
    plan_duration_days = factory.LazyAttribute(lambda o: o.plan.duration_days)
    bumps_cents = 0
    credit_cents = 0
    total_cents = factory.LazyAttribute(lambda o: o.plan_price_cents + o.bumps_cents - o.credit_cents)
    customer_name = factory.Faker("name", locale="pt_BR")
    customer_email = factory.Sequence(lambda n: f"buyer{n}@example.com")
    customer_document = "52998224725"
    customer_phone = "11987654321"
    customer_birth_date = date(1990, 5, 17)  # of age in any year the suite runs


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    user = factory.SubFactory(UserFactory)
    plan = factory.SubFactory(PlanFactory)
    status = Subscription.Status.ACTIVE
    start_date = factory.LazyFunction(lambda: timezone.now() - timedelta(days=5))
    end_date = factory.LazyAttribute(lambda o: o.start_date + timedelta(days=o.plan.duration_days))
