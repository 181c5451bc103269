from django_hosts import host, patterns

host_patterns = patterns("", host(r"localhost|127\.0\.0\.1|testserver", "sefaria.urls_library", name="library"))
