from django.urls import path

from legal import api

urlpatterns = [
    path("me/data", api.MeDataApi.as_view(), name="api-me-data"),
    path("me/delete", api.MeDeleteApi.as_view(), name="api-me-delete"),
]
