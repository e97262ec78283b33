"""A feed's life cycle and its one-time token page, under /initiatives/<slug>/."""

from django.urls import path

from metrics import views

urlpatterns = [
    path("feeds/<int:feed_id>/pause/", views.feed_pause, name="feed-pause"),
    path("feeds/<int:feed_id>/resume/", views.feed_resume, name="feed-resume"),
    path("feeds/<int:feed_id>/retire/", views.feed_retire, name="feed-retire"),
    path("feeds/<int:feed_id>/token/", views.feed_token, name="feed-token"),
]
