from django.apps import AppConfig


class BraintrustOpsSandboxConfig(AppConfig):
    """The local emulator of Braintrust and Anthropic, for development and tests only: the production
    settings never install it (sefaria/settings.py); the development ones do (sefaria/settings_dev.py)."""

    name = "braintrust_ops_sandbox"
    verbose_name = "Braintrust operations sandbox (development only)"
