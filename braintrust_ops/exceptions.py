"""The app's error classes: what failed, and whether trying again later can help.

Clients translate transport and HTTP errors into these at their boundary; commands turn
``BraintrustOpsError`` into ``CommandError`` (a clear message and a non-zero exit).
"""


class BraintrustOpsError(Exception):
    """Base class. ``str(error)`` is a message for a person: what failed and what to do."""

    def __init__(self, message: str, **context):
        super().__init__(message)
        self.context = context


class ConfigurationError(BraintrustOpsError):
    """A setting is missing or malformed; nothing was sent anywhere."""


class CommandLocked(BraintrustOpsError):
    """Another run of the same command holds the lock."""


class RemoteServiceError(BraintrustOpsError):
    """A remote API call failed. ``service`` is "Braintrust" or "Anthropic"."""

    def __init__(self, message: str, *, service: str, status: int | None = None, **context):
        # Built from a service's reply, which may quote the request's key: redacted here, whatever built it.
        # Imported here: conf imports this module.
        from braintrust_ops.conf import without_secrets

        super().__init__(without_secrets(message), service=service, status=status, **context)
        self.service = service
        self.status = status


class TransientServiceError(RemoteServiceError):
    """Rate limit, overload, time-out, 5xx or a garbled reply, still failing after retries: try later."""


class PermanentServiceError(RemoteServiceError):
    """The request cannot succeed as it is (bad request, unknown project or dataset)."""


class AuthenticationFailed(PermanentServiceError):
    """The API key was refused: stop at once, retrying cannot help."""


class ProjectNotFound(PermanentServiceError):
    """BRAINTRUST_PROJECT_ID names no project this key can read."""


class InvalidReply(TransientServiceError):
    """The service answered, but not in the shape the API documents."""
