from django.urls import path

from billing import api

urlpatterns = [
    path("plans", api.PlanListApi.as_view(), name="api-plans"),
    path("me/subscription", api.MySubscriptionApi.as_view(), name="api-me-subscription"),
    path("me/subscription/cancel", api.MySubscriptionCancelApi.as_view(), name="api-me-subscription-cancel"),
    path("me/subscription/change-plan", api.MySubscriptionChangePlanApi.as_view(), name="api-me-subscription-change-plan"),
]
