from django.urls import path

from legal import views

app_name = "legal"

urlpatterns = [
    path("account/delete/", views.account_delete, name="account_delete"),
]
