"""Stand-in for Sefaria-Project's ``sefaria/settings.py``: what the host's settings do that matters to a guest app.

- ``INSTALLED_APPS`` is a tuple; django-hosts routes every request (``ROOT_URLCONF`` has no patterns).
- Databases come from ``local_settings.py`` only: nothing here reads ``DATABASE_URL``.
- No Sentry here: the host starts it in gunicorn's ``post_fork`` (``gunicorn.conf.py``).
"""

import os

SECRET_KEY = "stand-in-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "America/Halifax"  # the host's, not UTC
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"  # the host's, for its legacy tables

INSTALLED_APPS = (
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "reader",
    "django.contrib.staticfiles",
    "django.contrib.admin",
    "django_hosts",
)

MIDDLEWARE = [
    "django_hosts.middleware.HostsRequestMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_hosts.middleware.HostsResponseMiddleware",
]

ROOT_URLCONF = "sefaria.urls"
ROOT_HOSTCONF = "sefaria.hosts"
DEFAULT_HOST = "library"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                # The host's own, which load its models (sefaria.model: MongoDB at import).
                "sefaria.system.context_processors.global_settings",
            ]
        },
    }
]
STATIC_URL = "/static/"

# Grab environment specific settings from a file which is left out of the repo (as the host does).
from sefaria.local_settings import *  # noqa: E402, F403

# As the host's local-settings file reads them (helm-chart/.../local-settings-file.yaml); only gunicorn's
# post_fork starts Sentry with them (gunicorn.conf.py).
SENTRY_DSN = os.getenv("SENTRY_DSN", None)
SENTRY_CODE_VERSION = os.getenv("SENTRY_CODE_VERSION", "unknown")
SENTRY_ENVIRONMENT = os.getenv("SENTRY_ENVIRONMENT", "unknown")
