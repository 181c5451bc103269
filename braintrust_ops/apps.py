from django.apps import AppConfig


class BraintrustOpsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "braintrust_ops"
    verbose_name = "Braintrust operations"
