from django.urls import path

from billing import pages

app_name = "billing"

urlpatterns = [
    path("plans/", pages.plans, name="plans"),
    path("checkout/<int:plan_id>/", pages.checkout, name="checkout"),
    path("checkout/pay/<uuid:checkout_id>/", pages.checkout_pay, name="checkout-pay"),
    path("account/", pages.account, name="account"),
    path("account/cancel/", pages.account_cancel, name="account_cancel"),
    path("account/change-plan/", pages.account_change_plan, name="account_change_plan"),
]
