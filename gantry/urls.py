from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path, reverse
from django.views.generic import RedirectView

from gantry import health
from gates.http import post_only
from metrics import api as metrics_api
from metrics import views as metrics_views
from pages import reviews, views
from readiness import views as readiness_views

urlpatterns = [
    path("", views.home, name="home"),
    path("initiatives/", views.initiative_list, name="initiative-list"),
    path("initiatives/new/", views.initiative_create, name="initiative-create"),
    path("initiatives/export.csv", views.initiative_export, name="initiative-export"),
    path("budget/", views.budget_requests, name="budget-requests"),
    path("value/export.csv", views.value_export, name="value-export"),
    path("initiatives/<slug:slug>/", views.initiative_detail, name="initiative-detail"),
    path("initiatives/<slug:slug>/edit/", views.initiative_edit, name="initiative-edit"),
    path("initiatives/<slug:slug>/reframe/", views.initiative_reframe, name="initiative-reframe"),
    path("initiatives/<slug:slug>/propose/", views.initiative_propose, name="initiative-propose"),
    path(
        "initiatives/<slug:slug>/proposals/<int:proposal_id>/decline/",
        views.proposal_decline,
        name="proposal-decline",
    ),
    path(
        "initiatives/<slug:slug>/audit.<str:fmt>",
        views.initiative_audit,
        name="initiative-audit",
    ),
    path(
        "initiatives/<slug:slug>/decide/<str:transition>/",
        views.decide,
        name="initiative-decide",
    ),
    path("initiatives/<slug:slug>/feeds/new/", metrics_views.feed_create, name="feed-create"),
    path(
        "initiatives/<slug:slug>/feeds/<int:feed_id>/rotate/",
        metrics_views.feed_rotate,
        name="feed-rotate",
    ),
    path("initiatives/<slug:slug>/upload/", metrics_views.upload, name="metrics-upload"),
    path("initiatives/<slug:slug>/", include("metrics.urls")),
    path("initiatives/<slug:slug>/", include("value.urls")),
    path(
        "initiatives/<slug:slug>/reviews/<int:review_id>/",
        reviews.review_detail,
        name="review-detail",
    ),
    path(
        "initiatives/<slug:slug>/reviews/<int:review_id>/items/<int:item_id>/assign/",
        reviews.item_assign,
        name="review-item-assign",
    ),
    path(
        "initiatives/<slug:slug>/reviews/<int:review_id>/assign/",
        reviews.assign_many,
        name="review-assign-many",
    ),
    path(
        "initiatives/<slug:slug>/reviews/<int:review_id>/items/<int:item_id>/check/",
        reviews.item_check,
        name="review-item-check",
    ),
    path(
        "initiatives/<slug:slug>/reviews/<int:review_id>/items/<int:item_id>/uncheck/",
        reviews.item_uncheck,
        name="review-item-uncheck",
    ),
    path(
        "initiatives/<slug:slug>/reviews/<int:review_id>/decide/<str:transition>/",
        reviews.review_decide,
        name="review-decide",
    ),
    path("work-items/<int:work_item_id>/done/", readiness_views.work_item_done, name="work-done"),
    path(
        "work-items/<int:work_item_id>/reopen/",
        readiness_views.work_item_reopen,
        name="work-reopen",
    ),
    path("my-work/", readiness_views.my_work, name="my-work"),
    path("people/suggest/", views.people_suggest, name="people-suggest"),
    path("healthz", health.healthz, name="healthz"),
    path("livez", health.livez, name="livez"),
    path(
        "api/v1/feeds/<int:feed_id>/observations",
        metrics_api.observations,
        name="api-observations",
    ),
    path("api/v1/", include("api.urls")),
    # Django's logout takes only POST (the button in the top bar); a typed or bookmarked
    # /accounts/logout/ goes home instead of to a blank 405.
    path(
        "accounts/logout/",
        post_only(
            lambda request: reverse("home"),
            "To sign out, use the “Sign out” button at the top of the page.",
        )(auth_views.LogoutView.as_view()),
        name="logout",
    ),
    path("notifications/", include("notifications.urls")),
    path("accounts/", include("accounts.urls")),
    # django-allauth's single sign-on: the provider's login and callback under /sso/. Its own
    # sign-in page would be a second one: it sends people to Gantry's.
    path(
        "sso/login/",
        login_not_required(RedirectView.as_view(pattern_name="login", query_string=True)),
    ),
    path("sso/", include("allauth.urls")),
    path("admin/", admin.site.urls),
]
