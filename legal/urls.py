from django.urls import path

from legal import views

app_name = "legal"

urlpatterns = [
    path("account/delete/", views.account_delete, name="account_delete"),
    path("terms/", views.terms, name="terms"),
    path("privacy/", views.privacy, name="privacy"),
    path("cookies/", views.cookie_preferences, name="cookies"),
]
