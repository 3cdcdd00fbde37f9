from django.urls import path

from billing import pages

app_name = "billing"

urlpatterns = [
    path("plans/", pages.plans, name="plans"),
    path("checkout/<int:plan_id>/", pages.checkout, name="checkout"),
    path("account/", pages.account, name="account"),
    path("account/cancel/", pages.account_cancel, name="account_cancel"),
    path("account/change-plan/", pages.account_change_plan, name="account_change_plan"),
]
