from django.urls import path

from accounts import api

urlpatterns = [
    path("auth/register", api.AuthRegisterApi.as_view(), name="api-auth-register"),
    path("auth/login", api.AuthLoginApi.as_view(), name="api-auth-login"),
    path("auth/logout", api.AuthLogoutApi.as_view(), name="api-auth-logout"),
]
