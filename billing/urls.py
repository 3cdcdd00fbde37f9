from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("plans/", views.plans, name="plans"),
    path("checkout/<int:plan_id>/", views.checkout, name="checkout"),
    path("checkout/pay/<uuid:checkout_id>/", views.checkout_pay, name="checkout-pay"),
    path("checkout/pay/<uuid:checkout_id>/reopen/", views.checkout_reopen, name="checkout-reopen"),
    path("checkout/reminders/unsubscribe/<str:token>/", views.reminders_unsubscribe, name="reminders-unsubscribe"),
    path("account/", views.account, name="account"),
    path("account/receipts/<uuid:checkout_id>/", views.receipt, name="receipt"),
    path("account/receipts/marketplace/<str:transaction_id>/", views.marketplace_receipt, name="marketplace-receipt"),
    path("account/cancel/", views.account_cancel, name="account_cancel"),
    path("account/card/remove/", views.account_card_remove, name="account_card_remove"),
    path("account/withdraw/", views.account_withdraw, name="account_withdraw"),
    path("account/change-plan/", views.account_change_plan, name="account_change_plan"),
]
