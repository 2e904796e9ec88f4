"""Settings for the Redemption Code Portal, read from the environment in this one place."""

import ipaddress
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PORTAL_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is false.")
    SECRET_KEY = "dev-only-insecure-key-not-for-production-use-0123456789abcdef"  # noqa: S105
ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
    if h.strip()
]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_tables2",
    "django_filters",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    # Before django_tasks_db: the app listed first wins a command name, and redemption's
    # `db_worker` (jobs with leases, the periodic work, outages) replaces the plain one.
    "redemption",
    "django_tasks_db",
]

MIDDLEWARE = [
    "redemption.middleware.RequestIdMiddleware",
    "redemption.middleware.DatabaseOutageMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "redemption.middleware.NoStoreMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "redemption.middleware.SessionRenewMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "redemption.middleware.SecondFactorRequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a refused sign-in into the "sign-in paused" page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
                "django.template.context_processors.csp",
                "redemption.context_processors.roles",
            ],
        },
    },
]

# Databases: SQLite embedded by default; DATABASE_URL switches to PostgreSQL.
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    _db = dj_database_url.parse(DATABASE_URL, conn_max_age=600, conn_health_checks=True)
    if _db["ENGINE"] == "django.db.backends.postgresql":
        _db["ENGINE"] = "redemption.db.postgresql"  # a health check without a round trip
else:
    _db = {
        "ENGINE": "redemption.db.sqlite_writer",
        "NAME": os.environ.get("SQLITE_PATH", str(VAR_DIR / "portal.sqlite3")),
    }
_SQLITE = ("django.db.backends.sqlite3", "redemption.db.sqlite_writer")
if _db["ENGINE"] in _SQLITE:
    _db["ENGINE"] = "redemption.db.sqlite_writer"  # SQLite, writers of a process queued in order
    _db["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;"
        ),
    }
    _db.setdefault("TEST", {})["NAME"] = str(VAR_DIR / "test.sqlite3")  # a file: threads share it
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Cache: local memory unless CACHE_URL points at Redis (shared rate limits across hosts).
CACHE_URL = os.environ.get("CACHE_URL", "")
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": CACHE_URL,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                # Fail fast when the cache server is down (counters fall back to the database).
                "SOCKET_CONNECT_TIMEOUT": env_int("CACHE_SOCKET_TIMEOUT", 1),
                "SOCKET_TIMEOUT": env_int("CACHE_SOCKET_TIMEOUT", 1),
            },
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "portal"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

TASKS = {
    "default": {
        "BACKEND": os.environ.get("TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default"],
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "redemption:dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
USE_THOUSAND_SEPARATOR = False

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
# Production serves static files itself (WhiteNoise): `manage.py collectstatic` writes
# compressed copies with content-hashed names into STATIC_ROOT; pages link to the hashed names.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = Path(os.environ.get("PORTAL_MEDIA_ROOT", VAR_DIR / "media"))

DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
API_MAX_BODY_BYTES = 1024 * 1024
IMPORT_MAX_BODY_BYTES = 200 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# --- Hostile input: request bodies answered before they were read ---
# A request refused from its headers (413 too large, 401, 404...) first reads and drops what
# is left of its body, at most this many bytes for at most this many seconds, so that a client
# still sending gets the answer instead of a connection reset; past either bound the
# connection is closed (portal/drain.py).
REQUEST_DRAIN_MAX_BYTES = env_int("REQUEST_DRAIN_MAX_BYTES", 16 * 1024 * 1024)
REQUEST_DRAIN_MAX_SECONDS = env_int("REQUEST_DRAIN_MAX_SECONDS", 5)

# Product knobs.
REDEEM_MAX_FAILED_PER_PROFILE = env_int("REDEEM_MAX_FAILED_PER_PROFILE", 10)
REDEEM_MAX_FAILED_PER_IP = env_int("REDEEM_MAX_FAILED_PER_IP", 50)
REDEEM_FAILED_WINDOW_SECONDS = env_int("REDEEM_FAILED_WINDOW_SECONDS", 15 * 60)
JOB_BATCH_SIZE = env_int("JOB_BATCH_SIZE", 10_000)
SWEEP_INTERVAL_SECONDS = env_int("SWEEP_INTERVAL_SECONDS", 60)
# The per-state count deltas (PostgreSQL) are folded this often: a count read sums the rows
# written since the last fold, so this bounds what every inventory and type page reads.
COUNT_FOLD_SECONDS = env_int("COUNT_FOLD_SECONDS", 5)

# brainCloud wire (SPEC §11): origins a browser client may call /dispatcherv2 from (comma
# list, "*" for any), and anonymous sign-ins allowed per client IP per minute.
BRAINCLOUD_CORS_ORIGINS = [
    o.strip() for o in os.environ.get("BRAINCLOUD_CORS_ORIGINS", "*").split(",") if o.strip()
]
WIRE_ANON_PER_IP_PER_MINUTE = env_int("WIRE_ANON_PER_IP_PER_MINUTE", 30)

# --- Production: workers, job leases, outages, PgBouncer ---
# A running job's lease; its worker renews it with every batch, and a live worker takes over a
# job whose lease ran out (within two lease periods).
JOB_LEASE_SECONDS = env_int("JOB_LEASE_SECONDS", 30)
# Seconds a client should wait before retrying while the database is unreachable (503).
OUTAGE_RETRY_AFTER_SECONDS = env_int("OUTAGE_RETRY_AFTER_SECONDS", 5)
# An unreachable database host (not only a stopped server) must fail fast, not hang a worker.
DATABASE_CONNECT_TIMEOUT = env_int("DATABASE_CONNECT_TIMEOUT", 5)
if _db["ENGINE"] not in _SQLITE:
    _db.setdefault("OPTIONS", {}).setdefault("connect_timeout", DATABASE_CONNECT_TIMEOUT)
    # Behind PgBouncer in transaction pooling mode: no server-side cursors (they outlive a
    # transaction). Prepared statements stay off: Django leaves psycopg's prepare_threshold
    # unset unless OPTIONS set it.
    _db["DISABLE_SERVER_SIDE_CURSORS"] = env_bool("DATABASE_PGBOUNCER", False)
# The cache server (rate limits) down: counters fall back to the database; logged this often.
CACHE_OUTAGE_LOG_SECONDS = env_int("CACHE_OUTAGE_LOG_SECONDS", 60)

# --- Security: webhook targets, client IPs behind proxies, credentials, webhook secrets ---
# Webhook URLs must be https in production; plain http only in debug or when allowed here.
FULFILLMENT_ALLOW_HTTP = env_bool("FULFILLMENT_ALLOW_HTTP", False)
# Development and tests only: lets webhooks reach loopback, private and link-local addresses.
FULFILLMENT_ALLOW_PRIVATE_NETWORKS = env_bool("FULFILLMENT_ALLOW_PRIVATE_NETWORKS", False)
# How many reverse proxies (load balancers) append to X-Forwarded-For in front of the app;
# 0 trusts no header and takes the peer address (REMOTE_ADDR) as the client's.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
# User tokens are signed with this key (default: the Django secret key); tokens signed with
# one of the fallbacks still verify, so a key can be rotated without signing everyone out.
USER_TOKEN_SIGNING_KEY = os.environ.get("USER_TOKEN_SIGNING_KEY", "") or SECRET_KEY
USER_TOKEN_SIGNING_KEY_FALLBACKS = [
    k.strip()
    for k in os.environ.get("USER_TOKEN_SIGNING_KEY_FALLBACKS", "").split(",")
    if k.strip()
]
# After a webhook secret is rotated, calls are signed with the old secret too for this long.
WEBHOOK_SECRET_GRACE_HOURS = env_int("WEBHOOK_SECRET_GRACE_HOURS", 24)

# --- Security: staff sign-in limits, second factor, idle sessions ---
# django-axes checks every sign-in before the password is looked at; the handler counts failed
# tries per account (across addresses) and per client IP (across accounts), each try taken by
# one conditional UPDATE (redemption/sign_in_limits.py). Locked counters open again after the
# cool-off, or when a superuser unlocks the account.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "redemption.sign_in_limits.SignInLimitHandler"
AXES_FAILURE_LIMIT = env_int("STAFF_SIGN_IN_MAX_FAILED_PER_ACCOUNT", 5)
STAFF_SIGN_IN_MAX_FAILED_PER_IP = env_int("STAFF_SIGN_IN_MAX_FAILED_PER_IP", 20)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("STAFF_SIGN_IN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # two separate limits, not a pair
AXES_RESET_ON_SUCCESS = True  # a completed sign-in forgets the account's failures
AXES_CLIENT_IP_CALLABLE = "redemption.client_ip.client_ip"
AXES_LOCKOUT_CALLABLE = "redemption.views.auth.sign_in_paused"
AXES_VERBOSE = False
# Optional TOTP second factor (django-otp) with one-time recovery codes. These roles must
# enrol before they can use the portal: a comma list of admin, Ops, Support, Viewer.
STAFF_2FA_REQUIRED_ROLES = frozenset(
    r.strip() for r in os.environ.get("STAFF_2FA_REQUIRED_ROLES", "").split(",") if r.strip()
)
if not {"admin", "Ops", "Support", "Viewer"} >= STAFF_2FA_REQUIRED_ROLES:
    raise ImproperlyConfigured(
        "STAFF_2FA_REQUIRED_ROLES: a comma list of admin, Ops, Support, Viewer "
        f"(got {', '.join(sorted(STAFF_2FA_REQUIRED_ROLES))})."
    )
OTP_TOTP_ISSUER = os.environ.get("STAFF_2FA_ISSUER", "Redemption Portal")
# The sign-in limits count wrong codes; django-otp's own per-device back-off would refuse a
# right code for a while after a wrong one, with no message to say so.
OTP_TOTP_THROTTLE_FACTOR = 0
OTP_STATIC_THROTTLE_FACTOR = 0
# A staff session ends after this many minutes without a request: SessionRenewMiddleware
# renews it (at most once a minute, to spare the database a write per page).
STAFF_SESSION_IDLE_MINUTES = env_int("STAFF_SESSION_IDLE_MINUTES", 60)
SESSION_COOKIE_AGE = STAFF_SESSION_IDLE_MINUTES * 60
# A set-password link (new staff user, password reset by a superuser) works once, this long.
PASSWORD_RESET_TIMEOUT = env_int("STAFF_SET_PASSWORD_LINK_HOURS", 72) * 3600

# Security headers; strict in production, relaxed only where DEBUG needs plain HTTP.
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SECURE_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
}
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
if not DEBUG and env_bool("DJANGO_SECURE", True):
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [
        r"^healthz\Z",
        r"^readyz\Z",
        r"^metrics\Z",
    ]  # \Z: $ would match "healthz\n"

# --- Observability: metrics, logs, request ids ---
# GET /metrics answers a bearer METRICS_TOKEN or a caller in METRICS_ALLOWED_IPS (addresses or
# networks, comma-separated); with neither set it is a 404 like any unknown path.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "").strip()
try:
    METRICS_ALLOWED_IPS = [
        ipaddress.ip_network(item.strip(), strict=False)
        for item in os.environ.get("METRICS_ALLOWED_IPS", "").split(",")
        if item.strip()
    ]
except ValueError as err:
    raise ImproperlyConfigured(f"METRICS_ALLOWED_IPS: {err}") from err
# Every process of this host (gunicorn workers, db_worker) writes its figures here and /metrics
# merges them (prometheus_client's multiprocess mode). prometheus_client reads the variable when
# it is first imported, which is after the settings in every process: keep it that way.
METRICS_DIR = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or VAR_DIR / "metrics")
METRICS_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)

LOG_FORMAT = os.environ.get("LOG_FORMAT", "text").strip().lower() or "text"
if LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured("LOG_FORMAT must be 'text' or 'json'.")
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
# One handler on the root logger writes every line once; Django's own loggers and the worker's
# propagate to it instead of keeping handlers of their own. gunicorn.conf.py hands this same
# configuration to gunicorn, so its access log (stdout) and error log are formatted alike.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request": {"()": "redemption.logs.RequestContextFilter"}},
    "formatters": {
        "line": {
            "()": "redemption.logs.JsonFormatter"
            if LOG_FORMAT == "json"
            else "redemption.logs.TextFormatter"
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "line",
            "filters": ["request"],
        },
        "access": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "line",
            "filters": ["request"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": [], "level": "INFO", "propagate": True},
        "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}
