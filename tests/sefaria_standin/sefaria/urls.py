# The host's ROOT_URLCONF has no patterns: django-hosts routes every request (sefaria/hosts.py).
urlpatterns: list = []
