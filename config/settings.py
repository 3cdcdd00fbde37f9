"""
Settings for the CreatorFlix platform: one module, configured from the
environment (contract §2) with django-environ. Production-safe defaults:
DEBUG is off unless asked for, and a missing SECRET_KEY stops the process
with a clear message rather than a traceback.
"""

import base64
import hashlib
import sys
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# ---------------------------------------------------------------------------
# Core
# ---------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
# The test run (pytest) gets throwaway keys; every other process must be configured.
TESTING = "pytest" in sys.modules

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if DEBUG or TESTING:
        # Development and tests only: a fixed key so sessions survive restarts.
        SECRET_KEY = "django-insecure-development-only-key-never-use-in-production"
    else:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set the SECRET_KEY environment variable "
            "(a long random string), or DEBUG=true for local development."
        )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
# Reverse proxies in front of the site that append to X-Forwarded-For (nginx, a load balancer):
# the client address is taken that many hops from the right; 0 means REMOTE_ADDR and the header
# is never believed. Every throttle, lockout and log line uses config.client_ip.client_ip().
TRUSTED_PROXIES = env.int("TRUSTED_PROXIES", default=0)
if TRUSTED_PROXIES < 0:
    raise ImproperlyConfigured("TRUSTED_PROXIES must be 0 or a positive number of proxies.")
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[SITE_URL])

# ---------------------------------------------------------------------------
# Applications
# ---------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "django_celery_beat",
    "storages",
    "accounts",
    "billing",
    "whitelabel",
    "catalog",
    "legal",
    "integrations",
]

MIDDLEWARE = [
    # First: every answer is counted and timed, and every log line of the request carries its id.
    "config.metrics.RequestMetricsMiddleware",
    "config.request_id.RequestIdMiddleware",
    # First: the budget for payment-provider calls counts from the request's start.
    "config.middleware.GatewayBudgetMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.ContentSecurityPolicyMiddleware",
    "config.middleware.DatabaseUnavailableMiddleware",
    "integrations.attribution.AttributionMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.age",
                "billing.context_processors.access",
                "config.seller.seller",
                "legal.consent.consent",
                "integrations.pixels.page_pixels",
            ],
        },
    },
]

# ---------------------------------------------------------------------------
# Database and cache
# ---------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Persistent connections: a new connection per request costs ~7x (perf-facts.md).
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# A process whose requests outlive their reads (the events server: a stream lives for minutes and closes
# its connection after each read) sets a pool of at most this many connections (Django's psycopg pool):
# a "closed" connection goes back to the pool instead of PostgreSQL starting and ending a backend per read.
DATABASE_POOL_SIZE = env.int("DATABASE_POOL_SIZE", default=0)
if DATABASE_POOL_SIZE and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django refuses a pool with persistent connections
    # CONN_HEALTH_CHECKS (above) makes the pool check a connection before lending it.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_SIZE,
        # A read that waits this long for a connection fails (the stream ends, the page polls) rather than hangs.
        "timeout": 5,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            # django-redis, because it can degrade: with Redis down the site keeps serving
            # (cache misses, throttles open) instead of failing every request.
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="cf"),
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": 1,
                "SOCKET_TIMEOUT": 1,
                "IGNORE_EXCEPTIONS": True,
            },
        }
    }
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
    DJANGO_REDIS_LOGGER = "config.cache"
    # Sessions read from Redis (one query fewer per logged-in request), written through to
    # the database, which stays the source of truth: a Redis outage logs nobody out.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# ---------------------------------------------------------------------------
# Passwords and auth
# ---------------------------------------------------------------------------
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Failed logins allowed per window before the login is throttled (per IP and per email).
LOGIN_THROTTLE_ATTEMPTS = env.int("LOGIN_THROTTLE_ATTEMPTS", default=10)
LOGIN_THROTTLE_WINDOW = env.int("LOGIN_THROTTLE_WINDOW", default=900)
# Sign-ups allowed per client IP per window on the sign-up page (the API has its own throttle).
SIGNUP_RATE_LIMIT = env.int("SIGNUP_RATE_LIMIT", default=10)
SIGNUP_RATE_WINDOW = env.int("SIGNUP_RATE_WINDOW", default=3600)

# ---------------------------------------------------------------------------
# Internationalisation: pt-BR first, English available
# ---------------------------------------------------------------------------
LANGUAGE_CODE = "pt-br"
LANGUAGES = [("pt-br", _("Portuguese (Brazil)")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale", BASE_DIR / "locale" / "third_party"]  # third_party: apps that ship no pt-BR
TIME_ZONE = "America/Sao_Paulo"
USE_I18N = True
USE_TZ = True

# ---------------------------------------------------------------------------
# Static and media files
# ---------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")

AWS_S3_ENDPOINT_URL = env.str("AWS_S3_ENDPOINT_URL", default="") or None
# The endpoint a visitor's browser reaches, when the site reaches S3 by an internal name
# (docker compose: http://minio:9000 inside, http://localhost:9000 outside). Presigned and
# public media URLs are built on it; the site's own S3 calls use AWS_S3_ENDPOINT_URL.
# Unset (None): the same as AWS_S3_ENDPOINT_URL.
AWS_S3_PUBLIC_ENDPOINT_URL = env.str("AWS_S3_PUBLIC_ENDPOINT_URL", default="").rstrip("/") or None
AWS_ACCESS_KEY_ID = env.str("AWS_ACCESS_KEY_ID", default="") or None
AWS_SECRET_ACCESS_KEY = env.str("AWS_SECRET_ACCESS_KEY", default="") or None
AWS_S3_REGION_NAME = env.str("AWS_S3_REGION_NAME", default="") or None
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="") or None
# SigV2 is deprecated and is what boto3 picks for us-east-1 without this.
AWS_S3_SIGNATURE_VERSION = "s3v4"
AWS_QUERYSTRING_EXPIRE = env.int("SIGNED_URL_TTL", default=3600)
AWS_DEFAULT_ACL = None
AWS_S3_FILE_OVERWRITE = False

_media_backend = (
    "storages.backends.s3.S3Storage"
    if AWS_STORAGE_BUCKET_NAME
    else "django.core.files.storage.FileSystemStorage"
)
STORAGES = {
    "default": {"BACKEND": _media_backend},
    "staticfiles": {
        "BACKEND": env.str(
            "STATICFILES_BACKEND",
            default="whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not DEBUG
            else "django.contrib.staticfiles.storage.StaticFilesStorage",
        )
    },
}

WHITELABEL_BUCKET = env.str("WHITELABEL_BUCKET", default="") or None
WHITELABEL_PREFIX = env.str("WHITELABEL_PREFIX", default="")
WHITELABEL_CDN_BASE_URL = env.str("WHITELABEL_CDN_BASE_URL", default="") or None
SIGNED_URL_TTL = env.int("SIGNED_URL_TTL", default=3600)
# Settings only (docs/whitelabel.md): ListObjectsV2 page size (tests lower it), and
# how old a `running` sync run must be to be taken for dead without PostgreSQL.
WHITELABEL_PAGE_SIZE = 1000
WHITELABEL_SYNC_STALE_SECONDS = 3 * 3600

# ---------------------------------------------------------------------------
# Billing
# ---------------------------------------------------------------------------
SUBSCRIPTION_GRACE_DAYS = env.int("SUBSCRIPTION_GRACE_DAYS", default=3)
# Who sells (Decreto 7.962/2013): every page's footer and every receipt name them (config/seller.py);
# billing.W001 warns while any is unset with DEBUG off. SELLER_DOCUMENT: the CNPJ (or CPF), digits or formatted.
SELLER_NAME = env.str("SELLER_NAME", default="")
SELLER_DOCUMENT = env.str("SELLER_DOCUMENT", default="")
SELLER_ADDRESS = env.str("SELLER_ADDRESS", default="")
SUPPORT_EMAIL = env.str("SUPPORT_EMAIL", default="")
# How long the polled checkout status stays cached (billing/checkout_status.py): written through
# by every status change, so this only bounds a cache write lost while Redis was unreachable.
CHECKOUT_STATUS_CACHE_SECONDS = env.int("CHECKOUT_STATUS_CACHE_SECONDS", default=120)
# The checkout page's event stream (GET /api/checkout/events/<id>, billing/checkout_events.py, contract §3):
# a heartbeat comment this often, so proxies keep the connection; `timeout` after this long (tests lower them).
CHECKOUT_EVENTS_HEARTBEAT_SECONDS = 15
CHECKOUT_EVENTS_TIMEOUT_SECONDS = 15 * 60
# Anonymous creator and post pages (catalog/page_cache.py): a publish changes their keys at once;
# this bounds how long a single admin edit of a creator or post takes to show to visitors.
CATALOG_PAGE_CACHE_SECONDS = env.int("CATALOG_PAGE_CACHE_SECONDS", default=60)
RENEWAL_NOTICE_DAYS = env.int("RENEWAL_NOTICE_DAYS", default=3)


def _retry_days(raw: str) -> tuple[int, ...]:
    """CARD_RENEWAL_RETRY_DAYS: "1,2" → (1, 2), ascending; anything else stops the start."""
    try:
        days = tuple(sorted({int(part) for part in raw.split(",") if part.strip()}))
    except ValueError:
        raise ImproperlyConfigured(f"CARD_RENEWAL_RETRY_DAYS must be comma-separated days, got {raw!r}") from None
    if any(d <= 0 for d in days):
        raise ImproperlyConfigured("CARD_RENEWAL_RETRY_DAYS: every value must be above 0")
    return days


# Days after end_date on which a refused automatic card renewal is charged again (inside the grace days).
CARD_RENEWAL_RETRY_DAYS = _retry_days(env.str("CARD_RENEWAL_RETRY_DAYS", default="1,2"))


def _recovery_minutes(raw: str) -> tuple[int, ...]:
    """CHECKOUT_RECOVERY_MINUTES: "30,1440" → (30, 1440), ascending, empty for none; anything else stops the start."""
    try:
        minutes = tuple(sorted({int(part) for part in raw.split(",") if part.strip()}))
    except ValueError:
        raise ImproperlyConfigured(f"CHECKOUT_RECOVERY_MINUTES must be comma-separated minutes, got {raw!r}") from None
    if any(m <= 0 for m in minutes):
        raise ImproperlyConfigured("CHECKOUT_RECOVERY_MINUTES: every value must be above 0")
    return minutes


# Minutes after an unpaid checkout when its reminder e-mails go out (the sweep sends them).
CHECKOUT_RECOVERY_MINUTES = _recovery_minutes(env.str("CHECKOUT_RECOVERY_MINUTES", default="30,1440"))

# Days after a subscription's first payment in which the buyer may withdraw with a full refund (CDC art. 49).
WITHDRAWAL_DAYS = env.int("WITHDRAWAL_DAYS", default=7)

# ---------------------------------------------------------------------------
# Age assurance (accounts/age.py)
# ---------------------------------------------------------------------------
# The minimum age to subscribe or see locked content.
MIN_AGE = env.int("MIN_AGE", default=18)
# How age is confirmed: `declaration` (the birth date given) or an age-verification provider's name
# (accounts.age.PROVIDERS; `sandbox` passes or fails on demand). The system check accounts.E002 refuses others.
AGE_VERIFICATION = env.str("AGE_VERIFICATION", default="declaration")
JUNGLEPAY_API_URL = env.str("JUNGLEPAY_API_URL", default="https://api.junglepagamentos.com/v1").rstrip("/")
JUNGLEPAY_SECRET_KEY = env.str("JUNGLEPAY_SECRET_KEY", default="") or None
# JunglePay's card tokenizer (the buyer's browser turns the card into a hash with it); the checkout
# page loads it, and only that page's CSP allows its origin. Tests point it at a local fake.
JUNGLEPAY_JS_URL = env.str("JUNGLEPAY_JS_URL", default="https://api.junglepagamentos.com/v1/js")
# The sandbox gateway fakes payments: allowed with DEBUG, or when explicitly enabled.
SANDBOX_GATEWAY_ALLOWED = env.bool("SANDBOX_GATEWAY_ALLOWED", default=DEBUG)
# Seconds. Every payment-provider call made inside one web request (and inside one charge or
# one webhook processing elsewhere) ends within this total (billing.gateways.base.gateway_budget):
# a hanging provider answers 503 `gateway_unavailable` well before gunicorn's --timeout (60 s,
# Dockerfile) kills the worker. It also sets how long a charge attempt counts as in flight and
# how long a webhook event's processing is leased (billing.services.charges, billing.webhooks).
GATEWAY_REQUEST_BUDGET_SECONDS = env.float("GATEWAY_REQUEST_BUDGET_SECONDS", default=20)
if not 2 <= GATEWAY_REQUEST_BUDGET_SECONDS <= 30:
    raise ImproperlyConfigured("GATEWAY_REQUEST_BUDGET_SECONDS must be between 2 and 30 (gunicorn's timeout is 60).")


def _field_encryption_key() -> str:
    key = env.str("FIELD_ENCRYPTION_KEY", default="")
    if key:
        return key
    if DEBUG or TESTING:
        # Development and tests only: derived from SECRET_KEY so `make run` needs no setup.
        digest = hashlib.sha256(("field-encryption:" + SECRET_KEY).encode()).digest()
        return base64.urlsafe_b64encode(digest).decode()
    raise ImproperlyConfigured(
        "FIELD_ENCRYPTION_KEY is not set. Generate one with "
        '`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`.'
    )


# Comma-separated Fernet keys; the first encrypts, all decrypt (key rotation).
FIELD_ENCRYPTION_KEY = _field_encryption_key()

# ---------------------------------------------------------------------------
# Integrations: attribution, outbound webhooks, ad platforms (docs/integrations.md)
# ---------------------------------------------------------------------------
# How long the first-party cookie keeps a visitor's first and last campaign touch.
ATTRIBUTION_COOKIE_DAYS = env.int("ATTRIBUTION_COOKIE_DAYS", default=30)
# Outbound webhooks: per-request timeout (s) and how long a failing delivery is retried.
OUTBOUND_WEBHOOK_TIMEOUT = env.int("OUTBOUND_WEBHOOK_TIMEOUT", default=10)
OUTBOUND_WEBHOOK_RETRY_DAYS = env.int("OUTBOUND_WEBHOOK_RETRY_DAYS", default=3)
# Delivered outbound deliveries (and their events) older than this are pruned daily (integrations/retention.py).
OUTBOX_RETENTION_DAYS = env.int("OUTBOX_RETENTION_DAYS", default=90)
if OUTBOX_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("OUTBOX_RETENTION_DAYS must be at least 1.")
# Ad platforms' server-side APIs (overridable for a staging proxy).
META_GRAPH_URL = env.str("META_GRAPH_URL", default="https://graph.facebook.com/v19.0")
GA4_COLLECT_URL = env.str("GA4_COLLECT_URL", default="https://www.google-analytics.com/mp/collect")
TIKTOK_EVENTS_URL = env.str("TIKTOK_EVENTS_URL", default="https://business-api.tiktok.com/open_api/v1.3/event/track/")
# The browser pixels' scripts (integrations.pixels), loaded after consent; their origins join
# the page's Content-Security-Policy only when they load.
META_PIXEL_SCRIPT_URL = env.str("META_PIXEL_SCRIPT_URL", default="https://connect.facebook.net/en_US/fbevents.js")
GA4_TAG_SCRIPT_URL = env.str("GA4_TAG_SCRIPT_URL", default="https://www.googletagmanager.com/gtag/js")
TIKTOK_PIXEL_SCRIPT_URL = env.str("TIKTOK_PIXEL_SCRIPT_URL", default="https://analytics.tiktok.com/i18n/pixel/events.js")

# ---------------------------------------------------------------------------
# E-mail
# ---------------------------------------------------------------------------
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
# An e-mail service's API instead of SMTP (django-anymail, docs/operations.md): EMAIL_BACKEND names it,
# anymail.backends.<esp>.EmailBackend (mailgun, postmark, sendgrid, brevo, amazon_ses, ...), and these
# variables give its credentials under the names Anymail reads for that service (<ESP>_API_KEY, ...).
# Unset ones are left out: Anymail then says which one the service needs, at the first send.
ANYMAIL_ESP = EMAIL_BACKEND.split(".")[2].upper() if EMAIL_BACKEND.startswith("anymail.backends.") else ""
ANYMAIL = {
    f"{ANYMAIL_ESP}_{name}": value
    for name, value in {
        # Postmark calls its key a server token.
        "SERVER_TOKEN" if ANYMAIL_ESP == "POSTMARK" else "API_KEY": env.str("ANYMAIL_API_KEY", default=""),
        "SECRET_KEY": env.str("ANYMAIL_SECRET_KEY", default=""),  # Mailjet, Scaleway
        "SENDER_DOMAIN": env.str("ANYMAIL_SENDER_DOMAIN", default=""),  # Mailgun
        "API_URL": env.str("ANYMAIL_API_URL", default=""),  # Mailgun's EU region, a Postal server
    }.items()
    if ANYMAIL_ESP and value
}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="CreatorFlix <no-reply@localhost>")

# ---------------------------------------------------------------------------
# Celery
# ---------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
# Without a broker, tasks run in-process so `make run` needs nothing else.
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The longest a task waits before its next try (the e-mails' and conversions' retry_backoff_max).
TASK_RETRY_WAIT_MAX = env.int("TASK_RETRY_WAIT_MAX", default=5 * 60)
# With acks_late, a message taken by a worker that dies stays in Redis's `unacked` set until this many
# seconds pass, then goes back to the queue (kombu's default is an hour: a killed worker's e-mails
# waited that long). A retry waiting for its countdown is such a message too, so this must stay above
# TASK_RETRY_WAIT_MAX plus a task's run, or the waiting retry is delivered twice
# (tests/config/test_settings.py checks every task against it).
# (`make drill` shortens both, so that a killed worker's tasks come back within its run.)
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=10 * 60)
if CELERY_VISIBILITY_TIMEOUT < TASK_RETRY_WAIT_MAX + 60:
    raise ImproperlyConfigured("CELERY_VISIBILITY_TIMEOUT must exceed TASK_RETRY_WAIT_MAX by a minute at least.")
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
# Celery's Django fixup closes the database connection before and after every task unless
# this is set: a worker then reconnects per task (bench/outbound.py). Set, it keeps the
# connection for this many tasks; config/celery.py applies Django's own rule (CONN_MAX_AGE,
# health checks) around each task instead.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)

# ---------------------------------------------------------------------------
# API
# ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api_errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "auth": env.str("THROTTLE_AUTH", default="20/min"),
        # New purchases: per customer (e-mail, CPF, session each), and a ceiling per address that
        # leaves room for a carrier-grade NAT (forty buyers a minute from one address all pass).
        "checkout_customer": env.str("THROTTLE_CHECKOUT_CUSTOMER", default="10/min"),
        "checkout_address": env.str("THROTTLE_CHECKOUT", default="120/min"),
        # A checkout's own PIX calls, counted apart from new purchases.
        "checkout_pix": env.str("THROTTLE_CHECKOUT_PIX", default="20/min"),
        "checkout_pix_address": env.str("THROTTLE_CHECKOUT_PIX_ADDRESS", default="300/min"),
        "checkout_simulate": env.str("THROTTLE_CHECKOUT_SIMULATE", default="30/min"),
        "checkout_card": env.str("THROTTLE_CHECKOUT_CARD", default="10/hour"),
        "checkout_card_address": env.str("THROTTLE_CHECKOUT_CARD_ADDRESS", default="120/hour"),
        # The checkout page's live coupon check (GET /api/coupons/<code>).
        "coupon_check": env.str("THROTTLE_COUPON_CHECK", default="60/min"),
        # Webhook requests that fail authentication; authenticated ones are never throttled.
        "webhook": env.str("THROTTLE_WEBHOOK", default="600/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CreatorFlix API",
    "DESCRIPTION": "Catalog, plans, checkout, subscriptions and payment webhooks.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI served from our own static files: no CDN, and CSP-friendly.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# Webhook bodies larger than this are refused with 413 before parsing.
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=256 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# ---------------------------------------------------------------------------
# Security
# ---------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the API's X-CSRFToken header is read from this cookie
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
X_FRAME_OPTIONS = "DENY"
# The site's own pages load nothing from elsewhere: scripts and styles are ours, no inline
# script. Media come from the S3/CDN endpoints over https (presigned URLs) or from 'self', and
# from the S3 endpoint the browser is sent to (which may be plain http in development).
_MEDIA_ORIGINS = sorted({url for url in (AWS_S3_ENDPOINT_URL, AWS_S3_PUBLIC_ENDPOINT_URL) if url})
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:", "https:", *_MEDIA_ORIGINS],
        "media-src": ["'self'", "blob:", "https:", *_MEDIA_ORIGINS],
        "connect-src": ["'self'"],
        "font-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not TESTING)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    # /healthz and /metrics are probed over plain HTTP inside the network (load balancer, Prometheus).
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]

# ---------------------------------------------------------------------------
# Logging: one structured line per event on stdout, secrets redacted
# ---------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "config.logging.RedactSecretsFilter"},
        "request_id": {"()": "config.request_id.RequestIdFilter"},
    },
    "formatters": {"json": {"()": "config.logging.JsonFormatter"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json",
            "filters": ["request_id", "redact"],
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "botocore": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
}

# ---------------------------------------------------------------------------
# Metrics (config/metrics.py)
# ---------------------------------------------------------------------------
# Bearer token GET /metrics requires; unset, /metrics answers 404.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# prometheus-client's multiprocess mode, read by the library itself from the environment: an empty
# directory shared by gunicorn's workers (config/gunicorn.py wipes it when the master starts).
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")

# ---------------------------------------------------------------------------
# Error reporting (config/sentry.py): off unless SENTRY_DSN is set
# ---------------------------------------------------------------------------
SENTRY_DSN = env.str("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env.str("SENTRY_ENVIRONMENT", default="development" if DEBUG else "production")
# Which build an error came from: set it to the deployed commit (CI: the git sha).
SENTRY_RELEASE = env.str("SENTRY_RELEASE", default="")
# Share of requests and tasks traced for performance (0 to 1); errors are always sent.
SENTRY_TRACES_SAMPLE_RATE = env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0)
if not 0 <= SENTRY_TRACES_SAMPLE_RATE <= 1:
    raise ImproperlyConfigured("SENTRY_TRACES_SAMPLE_RATE must be between 0 and 1.")
if SENTRY_DSN and not TESTING:
    # Here, in settings, so every process (gunicorn workers, celery worker and beat, commands) reports.
    from config.sentry import default_release, init_sentry  # needs nothing of Django but must run once settings are read

    init_sentry(
        dsn=SENTRY_DSN,
        environment=SENTRY_ENVIRONMENT,
        release=SENTRY_RELEASE or default_release(),
        traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE,
    )
