"""URLs of the dashboard benchmark: Gantry's own, plus an empty page as the baseline.

`/bench/empty/` renders `base.html` with no content, through the same middleware (sessions,
CSRF, login required), the same context processors (the navigation's role and open-work
count) and the same logged-in user as the measured pages: what any authenticated Gantry
page costs before it reads anything of its own.
"""

from django.shortcuts import render
from django.urls import path

from gantry.urls import urlpatterns as gantry


def empty(request):
    return render(request, "base.html")


urlpatterns = [path("bench/empty/", empty, name="bench-empty"), *gantry]
