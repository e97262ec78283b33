"""The notifications page, preferences, snoozing a flag, and the one-click unsubscribe."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_not_required
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt

from gates import clock
from gates.http import post_only
from notifications import mail, preferences, queries, snooze
from notifications.forms import PreferencesForm, SnoozeForm
from notifications.models import Kind, Notification
from portfolio.models import PurgatoryFlag


def _inbox(request, **kwargs) -> str:
    return reverse("notifications")


def inbox(request):
    """The person's own notifications, newest first, 50 to a page; all or only unread."""
    unread_only = request.GET.get("show") == "unread"
    page = Paginator(queries.inbox(request.user, unread_only=unread_only), queries.PAGE_SIZE)
    page = page.get_page(request.GET.get("page"))
    query = "show=unread&" if unread_only else ""
    return render(
        request,
        "notifications/inbox.html",
        {
            "page": page,
            "notes": page.object_list,
            "unread_only": unread_only,
            "unread": queries.unread_count(request.user),
            "query": query,
            "here": request.get_full_path(),
            "zone": timezone.get_current_timezone_name(),
        },
    )


def open_note(request, pk: int):
    """Mark one of the person's own notifications read and go where it points."""
    note = get_object_or_404(Notification, pk=pk, recipient=request.user)
    if note.read_at is None:
        Notification.objects.filter(pk=note.pk, read_at__isnull=True).update(read_at=clock.now())
    target = note.url or reverse("notifications")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = reverse("notifications")
    return redirect(target)


@post_only(_inbox, "Notifications are marked read with the buttons on this page.")
def mark_read(request):
    """Mark the chosen notifications (`ids`), or all of them (`all`), read: the person's own
    only, whatever ids are posted. Back to the page and filter the form was on."""
    mine = Notification.objects.filter(recipient=request.user, read_at__isnull=True)
    if request.POST.get("all"):
        count = mine.update(read_at=clock.now())
    else:
        ids = [int(v) for v in request.POST.getlist("ids") if v.isdigit()]
        count = mine.filter(pk__in=ids).update(read_at=clock.now()) if ids else 0
    messages.success(request, f"{count} notification{'s' if count != 1 else ''} marked read.")
    target = request.POST.get("next", "")
    if target.startswith(reverse("notifications")) and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}
    ):
        return redirect(target)
    return redirect("notifications")


def preferences_page(request):
    user = request.user
    initial = {f"email_{kind}": on for kind, on in preferences.choices_of(user).items()}
    initial["time_zone"] = user.time_zone
    form = PreferencesForm(
        request.POST or None, initial=initial, organisation_zone=settings.TIME_ZONE
    )
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            for kind, on in form.email_choices().items():
                preferences.choose(user, kind, on)
            get_user_model().objects.filter(pk=user.pk).update(
                time_zone=form.cleaned_data["time_zone"]
            )
        messages.success(request, "Your notification settings are saved.")
        return redirect("notification-preferences")
    return render(
        request,
        "notifications/preferences.html",
        {"form": form, "organisation_zone": settings.TIME_ZONE},
        status=400 if form.is_bound else 200,
    )


def _initiative_of_flag(request, flag_id: int, **kwargs) -> str:
    flag = PurgatoryFlag.objects.filter(pk=flag_id).select_related("initiative").first()
    return f"{flag.initiative.get_absolute_url()}#flags" if flag else reverse("initiative-list")


@post_only(_initiative_of_flag, "Flags are snoozed with the form on this page.")
def snooze_flag(request, flag_id: int):
    """Snooze a flag's reminders; back to the initiative page, saying what was done or what
    was wrong (nothing is written then)."""
    flag = get_object_or_404(PurgatoryFlag.objects.select_related("initiative"), pk=flag_id)
    initiative = flag.initiative
    if not snooze.may_snooze(initiative, request.user):
        raise PermissionDenied(snooze.SNOOZERS_ONLY)
    back = f"{initiative.get_absolute_url()}#flag-{flag.pk}"
    form = SnoozeForm(request.POST)
    label = flag.get_kind_display()
    if not form.is_valid():
        problems = [e for errors in form.errors.values() for e in errors]
        messages.error(request, f"“{label}” was not snoozed: " + " ".join(problems))
        return redirect(back)
    try:
        row = snooze.snooze(flag, user=request.user, **form.cleaned_data)
    except ValidationError as exc:
        messages.error(request, f"“{label}” was not snoozed: " + " ".join(exc.messages))
        return redirect(back)
    messages.success(request, f"Reminders for “{label}” are snoozed until {row.until:%-d %b %Y}.")
    return redirect(back)


@login_not_required
@csrf_exempt  # RFC 8058: mail clients post without cookies; the signed token is the proof.
def unsubscribe(request, token: str):
    """Turn off one kind's email for the person the signed link names. A GET asks to confirm
    (link scanners must not unsubscribe anyone); a POST, from that page or a mail client's
    one-click button, does it."""
    try:
        user_id, kind = mail.read_unsubscribe_token(token)
    except signing.BadSignature as exc:
        raise Http404("This unsubscribe link is not valid.") from exc
    if kind not in Kind.values:
        raise Http404("This unsubscribe link is not valid.")
    person = get_object_or_404(get_user_model(), pk=user_id)
    label = Kind(kind).label
    if request.method == "POST":
        preferences.choose(person, kind, False)
        if request.POST.get("confirm"):
            return redirect(reverse("notification-unsubscribe", args=[token]) + "?done=1")
        # A mail client's one-click POST: it shows nobody the answer, so no redirect.
        return render(request, "notifications/unsubscribe.html", {"label": label, "done": True})
    return render(
        request,
        "notifications/unsubscribe.html",
        {"label": label, "done": request.GET.get("done") == "1", "token": token},
    )
