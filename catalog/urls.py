from django.urls import path

from catalog import pages

app_name = "catalog"

urlpatterns = [
    path("", pages.home, name="home"),
    path("models/", pages.creators, name="creators"),
    path("models/<str:slug>/", pages.creator, name="creator"),
    path("posts/<int:post_id>/", pages.post, name="post"),
]
