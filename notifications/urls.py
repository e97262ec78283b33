from django.urls import path

from notifications import views

urlpatterns = [
    path("", views.inbox, name="notifications"),
    path("<int:pk>/", views.open_note, name="notification-open"),
    path("read/", views.mark_read, name="notifications-read"),
    path("preferences/", views.preferences_page, name="notification-preferences"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="notification-unsubscribe"),
    path("flags/<int:flag_id>/snooze/", views.snooze_flag, name="flag-snooze"),
]
