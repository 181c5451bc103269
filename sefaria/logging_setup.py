"""structlog for the stand-in project: JSON lines for the CronJob, readable lines for a person.

Sefaria's real settings configure structlog their own way; braintrust_ops only logs through
``structlog.get_logger`` and offers ``SecretRedactor`` for the host's processor chain.
"""

import logging.config

import structlog

from braintrust_ops.redaction import SecretRedactor


def configure_logging(*, log_format: str, level: str, secrets: list[str | None]) -> None:
    renderer = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    # Exceptions are formatted before redaction so a key inside a traceback is caught too.
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        SecretRedactor(secrets),
    ]
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "structlog": {
                    "()": structlog.stdlib.ProcessorFormatter,
                    "processors": [
                        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        renderer,
                    ],
                    "foreign_pre_chain": shared,
                },
            },
            "handlers": {
                # stderr keeps the command's own report on stdout clean for people and pipes.
                "default": {"class": "logging.StreamHandler", "formatter": "structlog", "stream": "ext://sys.stderr"},
            },
            "root": {"handlers": ["default"], "level": level},
            "loggers": {
                # The HTTP libraries log request URLs at DEBUG; keep them quiet unless asked.
                "urllib3": {"level": "WARNING"},
                # The anthropic SDK's: httpx under its 0.x releases, httpx2 under 1.x and later.
                "httpx": {"level": "WARNING"},
                "httpcore": {"level": "WARNING"},
                "httpx2": {"level": "WARNING"},
                "httpcore2": {"level": "WARNING"},
            },
        }
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
