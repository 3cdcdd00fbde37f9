from django.urls import path

from billing import api, checkout_api, webhook_api

urlpatterns = [
    path("plans", api.PlanListApi.as_view(), name="api-plans"),
    path("me/subscription", api.MySubscriptionApi.as_view(), name="api-me-subscription"),
    path("me/subscription/cancel", api.MySubscriptionCancelApi.as_view(), name="api-me-subscription-cancel"),
    path("me/subscription/change-plan", api.MySubscriptionChangePlanApi.as_view(), name="api-me-subscription-change-plan"),
    # --- payments: checkout and webhooks (payments branch) ---
    path("checkout/process", checkout_api.CheckoutProcessApi.as_view(), name="api-checkout-process"),
    path("checkout/pix", checkout_api.CheckoutPixApi.as_view(), name="api-checkout-pix"),
    path("checkout/<uuid:checkout_id>", checkout_api.CheckoutStatusApi.as_view(), name="api-checkout-detail"),
    path("checkout/<uuid:checkout_id>/simulate", checkout_api.CheckoutSimulateApi.as_view(), name="api-checkout-simulate"),
    path("webhook/junglepay", webhook_api.JunglePayWebhookApi.as_view(), name="api-webhook-junglepay"),
    # The original's spelling ("sucess") is what the marketplace has configured: keep it working.
    path("webhook/dias/payment-sucess", webhook_api.DiasWebhookApi.as_view(), name="api-webhook-dias-legacy"),
    path("webhook/dias/payment-success", webhook_api.DiasWebhookApi.as_view(), name="api-webhook-dias"),
    path("webhook/sandbox", webhook_api.SandboxWebhookApi.as_view(), name="api-webhook-sandbox"),
    # --- end payments ---
]
