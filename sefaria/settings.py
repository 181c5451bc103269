"""Settings standing in for Sefaria's: just enough Django to host the braintrust_ops app.

Everything comes from the environment so the same code runs on a laptop (SQLite, console logs),
in CI (PostgreSQL) and in the CronJob (JSON logs). The real Sefaria project keeps its own settings
and only needs the ``BRAINTRUST_OPS`` dict and the app in ``INSTALLED_APPS``.
"""

import os
from pathlib import Path

import dj_database_url

from braintrust_ops.conf import settings_from_environment
from sefaria.logging_setup import configure_logging

BASE_DIR = Path(__file__).resolve().parent.parent

# This stand-in project serves no web traffic except the admin on a developer's laptop.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "braintrust_ops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "sefaria.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=0,
    )
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"


# Raw strings from the environment: braintrust_ops.conf owns the names, the defaults, the parsing and the
# validation. The real Sefaria settings add the same line to their local_settings.
BRAINTRUST_OPS = settings_from_environment()

# As Sefaria's local settings name them (helm-chart/sefaria/templates/configmap/local-settings-file.yaml):
# with a DSN, each braintrust_ops command starts a Sentry client of its own (braintrust_ops/monitoring.py),
# since Sefaria starts one only in its web processes.
SENTRY_DSN = os.environ.get("SENTRY_DSN")
SENTRY_ENVIRONMENT = os.environ.get("SENTRY_ENVIRONMENT")
SENTRY_CODE_VERSION = os.environ.get("SENTRY_CODE_VERSION")

LOG_FORMAT = os.environ.get("LOG_FORMAT", "console")
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOGGING_CONFIG = None
configure_logging(
    log_format=LOG_FORMAT,
    level=LOG_LEVEL,
    secrets=[
        os.environ.get("BRAINTRUST_API_KEY"),
        os.environ.get("ANTHROPIC_API_KEY"),
        os.environ.get("DJANGO_SECRET_KEY"),
    ],
)
