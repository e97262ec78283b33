"""Gantry settings, read from environment variables.

The defaults make a laptop demo work with no services (SQLite, eager Celery tasks).
With DEBUG off every `manage.py check --deploy` item is switched on and SECRET_KEY
must be given.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from accounts.roles_map import parse_role_map

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "django-insecure-gantry-local-development-only"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "axes",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "ninja",  # its documentation page's assets, served locally
    # Lowest layer first: gates, then the domain, the feature apps, the pages, the project.
    "gates",
    "jobs",
    "portfolio",
    "metrics",
    "readiness",
    "accounts",
    "notifications",
    "value",
    "pages",
    "api",
    "gantry",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "gantry.middleware.api_errors_as_json",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "gantry.middleware.user_time_zone",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a refused sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "gantry.urls"
WSGI_APPLICATION = "gantry.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "pages.context_processors.navigation",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and not env_bool(
    "DATABASE_JIT", False
):
    # PostgreSQL's JIT compiles a plan when its estimated cost is high. Gantry's big
    # statements (the recompute's aggregate, the dashboard's sections) run for seconds or
    # less, and compiling cost more than it saved: 5.10 s against 3.86 s for the 50M-row
    # recompute (bench/README.md, "JIT at 50M").
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Room for the ingestion API's largest body (metrics.ingest.MAX_BODY_BYTES) and a CSV upload.
DATA_UPLOAD_MAX_MEMORY_SIZE = 6 * 1024 * 1024
LOGIN_URL = "login"

# Sign-in. django-axes counts failed sign-ins per username and per client address: either
# reaching the limit locks further attempts for the cool-off, whether or not the account
# exists, and each attempt is logged and listed in the admin (never the password).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "accounts.sign_in.LocalPasswordBackend",
    "accounts.sso.SingleSignOnBackend",
]
GANTRY_LOCAL_LOGIN = os.environ.get("GANTRY_LOCAL_LOGIN", "all").strip().lower()
if GANTRY_LOCAL_LOGIN not in {"all", "superusers", "off"}:
    raise ImproperlyConfigured("GANTRY_LOCAL_LOGIN must be all, superusers or off.")
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", False)
AXES_FAILURE_LIMIT = env_int("GANTRY_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("GANTRY_LOGIN_COOLOFF_MINUTES", 15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_CLIENT_IP_CALLABLE = "accounts.client.client_address"
AXES_LOCKOUT_CALLABLE = "accounts.views.locked_out"
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ACCESS_FAILURE_LOG = True
# The log names the username and the address of each failed attempt (axes masks them by
# default); the password is never logged or stored.
AXES_SENSITIVE_PARAMETERS: list[str] = []

# The REST API (/api/v1/): each personal access token may make this many requests per window.
GANTRY_API_RATE_LIMIT = env_int("GANTRY_API_RATE_LIMIT", 600)
GANTRY_API_RATE_WINDOW_SECONDS = env_int("GANTRY_API_RATE_WINDOW_SECONDS", 60)

# Single sign-on (accounts/sso.py): on when GANTRY_OIDC_ISSUER is set. django-allauth reads
# the provider's endpoints from the issuer's /.well-known/openid-configuration.
GANTRY_OIDC_ISSUER = os.environ.get("GANTRY_OIDC_ISSUER", "").rstrip("/")
GANTRY_OIDC_NAME = os.environ.get("GANTRY_OIDC_NAME", "single sign-on")
GANTRY_OIDC_GROUPS_CLAIM = os.environ.get("GANTRY_OIDC_GROUPS_CLAIM", "groups")
try:
    GANTRY_OIDC_ROLE_MAP = parse_role_map(os.environ.get("GANTRY_OIDC_ROLE_MAP", ""))
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from exc
if GANTRY_OIDC_ISSUER and not GANTRY_OIDC_ROLE_MAP:
    raise ImproperlyConfigured("GANTRY_OIDC_ISSUER is set: GANTRY_OIDC_ROLE_MAP must map groups.")
SOCIALACCOUNT_PROVIDERS = {
    "openid_connect": {
        "OAUTH_PKCE_ENABLED": True,
        "APPS": [
            {
                "provider_id": "sso",
                "name": GANTRY_OIDC_NAME,
                "client_id": os.environ.get("GANTRY_OIDC_CLIENT_ID", ""),
                "secret": os.environ.get("GANTRY_OIDC_CLIENT_SECRET", ""),
                "settings": {
                    "server_url": GANTRY_OIDC_ISSUER,
                    "scope": env_list("GANTRY_OIDC_SCOPES", "openid,profile,email,groups"),
                },
            }
        ]
        if GANTRY_OIDC_ISSUER
        else [],
    }
}
SOCIALACCOUNT_ONLY = True  # allauth's own password pages stay off: Gantry has its own
SOCIALACCOUNT_ADAPTER = "accounts.sso.SocialAccountAdapter"
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_LOGIN_ON_GET = False  # the sign-in button POSTs, with its CSRF token
# A local account whose address the provider has verified is the same person: linked at
# their first single sign-on, not duplicated.
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_STORE_TOKENS = False
ACCOUNT_EMAIL_VERIFICATION = "none"  # the provider vouches for addresses
ACCOUNT_LOGOUT_ON_GET = False
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
# The organisation's time zone: the weekly digest goes out on its Monday morning, and it is
# everyone's until they choose their own.
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_MANIFEST = env_bool("STATIC_MANIFEST", not DEBUG)
# collectstatic fills STATIC_ROOT for the manifest; without it files are served from static/.
STATIC_ROOT = BASE_DIR / "staticfiles" if STATIC_MANIFEST else None
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Hashed, compressed files in production; plain files for the demo and tests so
        # that no collectstatic step is needed.
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if STATIC_MANIFEST
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# Without collectstatic (demo, tests) WhiteNoise serves straight from static/.
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST

# Celery: without a broker, tasks run eagerly in-process (the embedded demo default).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_IGNORE_RESULT = True
# Failure is the normal case: a task is acknowledged only once it ran, and a worker process
# killed while running it gives it back instead of counting it as done.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A task running when the broker connection drops cannot be acknowledged any more: cancel
# it and let it be delivered again (every task is safe to run twice).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# A lost broker is waited for, at start and at run time, for as long as it takes.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# Redis's transport, with a worker that survives a broker restart (gantry/broker.py).
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT = "gantry.broker:Transport"
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # A message unacknowledged this long goes back to the queue: longer than the longest
    # task (an hourly recompute of a whole portfolio) plus the recompute debounce.
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 1800),
    # A hung Redis fails a command after this rather than hanging a process forever.
    "socket_timeout": 5,
    "socket_connect_timeout": 2,
    "socket_keepalive": True,
    "health_check_interval": 10,
}
# Publishing happens off the request (jobs.publish); one quick retry, then the tick.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
# Beat sends one task, the tick; what is due lives in the database (jobs.Job), so a tick
# lost to an outage delays the periodic jobs by one interval and drops none. A tick queued
# behind an outage expires instead of piling up.
GANTRY_TICK_SECONDS = env_int("GANTRY_TICK_SECONDS", 15)
CELERY_BEAT_SCHEDULE = {
    "tick": {
        "task": "jobs.tasks.tick",
        "schedule": GANTRY_TICK_SECONDS,
        "options": {"expires": GANTRY_TICK_SECONDS * 2},
    },
}
# /healthz answers 503 when no worker has ticked for this long.
GANTRY_WORKER_SILENCE_SECONDS = env_int("GANTRY_WORKER_SILENCE_SECONDS", 60)

# The cache holds the cached dashboard figures; Redis when given, per-process memory otherwise.
# A request waits at most CACHE_TIMEOUT_SECONDS on it, then does without.
CACHE_URL = os.environ.get("CACHE_URL", "")
CACHE_TIMEOUT_SECONDS = float(os.environ.get("CACHE_TIMEOUT_SECONDS", "0.1"))
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "OPTIONS": {
                "socket_timeout": CACHE_TIMEOUT_SECONDS,
                "socket_connect_timeout": CACHE_TIMEOUT_SECONDS,
            },
        }
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Metrics and gates.
GANTRY_RECOMPUTE_DEBOUNCE_SECONDS = env_int("GANTRY_RECOMPUTE_DEBOUNCE_SECONDS", 10)
GANTRY_MIN_OBSERVATIONS = env_int("GANTRY_MIN_OBSERVATIONS", 5)
GANTRY_GATE_CONFIDENCE = float(os.environ.get("GANTRY_GATE_CONFIDENCE", "0.95"))
# Purgatory: a launched initiative's primary metric below threshold for longer is flagged.
GANTRY_BELOW_THRESHOLD_DAYS = env_int("GANTRY_BELOW_THRESHOLD_DAYS", 14)
# Retention: raw observations are kept this many months (whole months, by partition); their
# daily rollups are kept for good. Snapshots older than this many days are kept one per
# metric per day.
GANTRY_OBSERVATION_RETENTION_MONTHS = env_int("GANTRY_OBSERVATION_RETENTION_MONTHS", 24)
GANTRY_SNAPSHOT_DAILY_AFTER_DAYS = env_int("GANTRY_SNAPSHOT_DAILY_AFTER_DAYS", 30)
# Recompute reads whole days from the daily rollups; off, it aggregates the raw rows of the
# whole window (the same figures): a fallback while rollups are being checked.
GANTRY_RECOMPUTE_FROM_ROLLUPS = env_bool("GANTRY_RECOMPUTE_FROM_ROLLUPS", True)

# Notifications. With EMAIL_HOST set mail goes over SMTP; without it every message is written
# as a file to GANTRY_MAIL_DIR, which is where the demo's mail is read.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = os.environ.get("GANTRY_MAIL_DIR", str(BASE_DIR / "var" / "mail"))
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
# Password reset by mail: on where mail leaves the machine (EMAIL_HOST) and for the DEBUG demo,
# whose mail is read from files; off otherwise, when its pages answer 404 and the sign-in page
# does not offer it. GANTRY_PASSWORD_RESET=1 or 0 says so outright.
GANTRY_PASSWORD_RESET = env_bool("GANTRY_PASSWORD_RESET", bool(EMAIL_HOST) or DEBUG)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Gantry <gantry@localhost>")
# Links in mail and webhooks are absolute: the address people reach Gantry at.
GANTRY_BASE_URL = os.environ.get("GANTRY_BASE_URL", "http://localhost:8000")
GANTRY_MAIL_DOMAIN = os.environ.get("GANTRY_MAIL_DOMAIN", "gantry.localhost")
GANTRY_MAIL_RETRY_SECONDS = env_int("GANTRY_MAIL_RETRY_SECONDS", 60)
GANTRY_WEBHOOK_RETRY_SECONDS = env_int("GANTRY_WEBHOOK_RETRY_SECONDS", 30)
# The weekly digest: Monday from this hour, in TIME_ZONE.
GANTRY_DIGEST_HOUR = env_int("GANTRY_DIGEST_HOUR", 8)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Production switches: every `check --deploy` item is on when DEBUG is off.
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    if BEHIND_TLS_PROXY:
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
AUTH_USER_MODEL = "portfolio.User"
