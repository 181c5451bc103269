"""The admin at /admin/, for the admin tests alone.

A host routes its admin its own way: Sefaria-Project's ``ROOT_URLCONF`` has no patterns (django-hosts
routes every request, its admin sits at ``ADMIN_PATH``), so ``reverse("admin:...")`` under the host's
URLconf fails. The tests name this one instead (``pytest.mark.urls``).
"""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
