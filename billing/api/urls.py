from django.urls import path

from billing.api import checkout, events, offers, receipts, subscriptions, webhooks

urlpatterns = [
    path("plans", subscriptions.PlanListApi.as_view(), name="api-plans"),
    path("me/subscription", subscriptions.MySubscriptionApi.as_view(), name="api-me-subscription"),
    path("me/card/remove", subscriptions.MyCardRemoveApi.as_view(), name="api-me-card-remove"),
    path("me/subscription/cancel", subscriptions.MySubscriptionCancelApi.as_view(), name="api-me-subscription-cancel"),
    path("me/subscription/change-plan", subscriptions.MySubscriptionChangePlanApi.as_view(), name="api-me-subscription-change-plan"),
    path("me/receipts", receipts.MyReceiptsApi.as_view(), name="api-me-receipts"),
    path("coupons/<str:code>", offers.CouponCheckApi.as_view(), name="api-coupon"),
    path("me/subscription/withdraw", subscriptions.MySubscriptionWithdrawApi.as_view(), name="api-me-subscription-withdraw"),
    path("checkout/process", checkout.CheckoutProcessApi.as_view(), name="api-checkout-process"),
    path("checkout/pix", checkout.CheckoutPixApi.as_view(), name="api-checkout-pix"),
    path("checkout/card", checkout.CheckoutCardApi.as_view(), name="api-checkout-card"),
    # Served by the ASGI workers in production (nginx routes /api/checkout/events/): see docs/operations.md.
    path("checkout/events/<uuid:checkout_id>", events.checkout_events, name="api-checkout-events"),
    path("checkout/<uuid:checkout_id>", checkout.CheckoutStatusApi.as_view(), name="api-checkout-detail"),
    path("checkout/<uuid:checkout_id>/sign-in", checkout.CheckoutSignInApi.as_view(), name="api-checkout-sign-in"),
    path("checkout/<uuid:checkout_id>/simulate", checkout.CheckoutSimulateApi.as_view(), name="api-checkout-simulate"),
    path("webhook/junglepay", webhooks.JunglePayWebhookApi.as_view(), name="api-webhook-junglepay"),
    # The original's spelling ("sucess") is what the marketplace has configured: keep it working.
    path("webhook/dias/payment-sucess", webhooks.DiasWebhookApi.as_view(), name="api-webhook-dias-legacy"),
    path("webhook/dias/payment-success", webhooks.DiasWebhookApi.as_view(), name="api-webhook-dias"),
    path("webhook/sandbox", webhooks.SandboxWebhookApi.as_view(), name="api-webhook-sandbox"),
]
