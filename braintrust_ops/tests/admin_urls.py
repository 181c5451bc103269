"""The admin at /admin/, for the admin tests alone.

A host routes its admin its own way: Sefaria-Project's ``ROOT_URLCONF`` has no patterns (django-hosts
routes every request, its admin sits at ``ADMIN_PATH``), so ``reverse("admin:...")`` under the host's
URLconf fails, and its routing middleware sends each request elsewhere; its template context
processors load its models, which connect to MongoDB. The tests name this URLconf
(``pytest.mark.urls``) and the admin's own middleware and templates instead.
"""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]

# What django.contrib.admin needs (its system checks name these): sessions, authentication, messages.
ADMIN_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

# The admin's templates with the context processors it needs (its system checks name them), and no host's.
ADMIN_TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
