"""The admin at /admin/, for the admin tests alone.

A host routes its admin its own way: Sefaria-Project's ``ROOT_URLCONF`` has no patterns (django-hosts
routes every request, its admin sits at ``ADMIN_PATH``), so ``reverse("admin:...")`` under the host's
URLconf fails, and its routing middleware sends each request elsewhere; its template context
processors, and the template tag libraries of its apps (which every Django template engine imports
when it starts), load its models, which connect to MongoDB. The tests name this URLconf
(``pytest.mark.urls``) and the admin's own middleware, templates and apps instead.
"""

from django.contrib import admin
from django.urls import path

# This app's admin pages on a site of their own: the host's site also lists its own apps' models, which the
# tests leave out of INSTALLED_APPS (below).
site = admin.AdminSite(name="admin")
for model, model_admin in admin.site._registry.items():
    if model._meta.app_label == "braintrust_ops":
        site.register(model, type(model_admin))

urlpatterns = [path("admin/", site.urls)]

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

# The apps the admin pages need, and this one: no host app's template tags are loaded.
ADMIN_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "braintrust_ops",
]
