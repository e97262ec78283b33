"""Budget requests of an initiative, under /initiatives/<slug>/."""

from django.urls import path

from value import views

urlpatterns = [
    path("budget/request/", views.request_create, name="budget-request-create"),
    path("budget/requests/<int:request_id>/", views.request_detail, name="budget-request"),
    path(
        "budget/requests/<int:request_id>/decide/",
        views.request_decide,
        name="budget-request-decide",
    ),
]
