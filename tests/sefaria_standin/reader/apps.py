from django.apps import AppConfig


class ReaderConfig(AppConfig):
    name = "reader"

    def ready(self):
        from reader import checks  # noqa: F401 - registers the host's checks
