"""Sign-in pages: the login form as GANTRY_LOCAL_LOGIN allows, and password reset by mail."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator

from accounts import sign_in, sso, tokens
from accounts.forms import TokenForm
from accounts.models import ApiToken
from gates.http import post_only


class LoginView(auth_views.LoginView):
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            local_login=sign_in.local_login(),
            password_reset=sign_in.password_reset_enabled(),
            sso_name=settings.GANTRY_OIDC_NAME if sso.enabled() else None,
            sso_url=reverse("openid_connect_login", kwargs={"provider_id": sso.PROVIDER_ID}),
            **kwargs,
        )


class _ResetSwitch:
    """Password reset answers 404 where it is switched off (sign_in.password_reset_enabled)."""

    @method_decorator(login_not_required)
    def dispatch(self, request, *args, **kwargs):
        if not sign_in.password_reset_enabled():
            raise Http404("Password reset is not available here.")
        return super().dispatch(request, *args, **kwargs)


class PasswordResetView(_ResetSwitch, auth_views.PasswordResetView):
    pass


class PasswordResetDoneView(_ResetSwitch, auth_views.PasswordResetDoneView):
    pass


class PasswordResetConfirmView(_ResetSwitch, auth_views.PasswordResetConfirmView):
    pass


class PasswordResetCompleteView(_ResetSwitch, auth_views.PasswordResetCompleteView):
    pass


def locked_out(request, response=None, credentials=None):
    """django-axes' lockout answer: 429 with Retry-After, in words that do not say whether
    the username exists."""
    minutes = max(1, round(settings.AXES_COOLOFF_TIME * 60))
    answer = render(
        request, "registration/locked_out.html", {"cooloff_minutes": minutes}, status=429
    )
    answer["Retry-After"] = str(minutes * 60)
    return answer


SHOWN_ONCE = "accounts.new_token"


def tokens_page(request):
    """Your personal access tokens: make one (its secret shown on the next page, once),
    see when each was last used, revoke."""
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            token, secret = tokens.create(user=request.user, **form.cleaned_data)
        except tokens.TokenError as exc:
            form.add_error(None, str(exc))
        else:
            # Carried to the next page in the session and removed there: after the
            # redirect a reload no longer shows it.
            request.session[SHOWN_ONCE] = {"id": token.pk, "secret": secret}
            return redirect("api-tokens")
    new = request.session.pop(SHOWN_ONCE, None)
    mine = ApiToken.objects.filter(user=request.user).order_by("-created_at", "-id")
    return render(
        request,
        "accounts/tokens.html",
        {"form": form, "tokens": mine, "new": new},
        status=400 if form.errors else 200,
    )


@post_only(
    lambda request, **kwargs: reverse("api-tokens"),
    "Tokens are revoked with the button on this page.",
)
def token_revoke(request, token_id: int):
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    tokens.revoke(token=token, user=request.user)
    messages.success(request, f"Token “{token.name}” is revoked: it no longer opens the API.")
    return redirect("api-tokens")
