# The only place the host starts Sentry (with its runserver): a `manage.py` process never runs this.
def post_fork(server, worker):
    from django.conf import settings
    from sefaria.settings_utils import init_sentry

    init_sentry(settings.SENTRY_DSN, "stand-in", "stand-in")
