"""The admin at /admin/, for the admin tests alone.

A host routes its admin its own way: Sefaria-Project's ``ROOT_URLCONF`` has no patterns (django-hosts
routes every request, its admin sits at ``ADMIN_PATH``), so ``reverse("admin:...")`` under the host's
URLconf fails, and its routing middleware sends each request elsewhere. The tests name this URLconf
(``pytest.mark.urls``) and the admin's own middleware instead.
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
