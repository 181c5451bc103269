from django.conf import settings
from django.contrib import admin
from django.urls import re_path

# The host mounts its admin at a deployment's ADMIN_PATH, not at "admin/".
urlpatterns = [re_path(rf"^{settings.ADMIN_PATH}/", admin.site.urls)]
