from django.urls import path

from catalog import api

app_name = "catalog_api"

urlpatterns = [
    path("models", api.CreatorListApi.as_view(), name="creator-list"),
    path("models/<str:slug>/posts", api.CreatorPostListApi.as_view(), name="creator-posts"),
    path("media/<int:pk>/file", api.media_file, name="media-file"),
]
