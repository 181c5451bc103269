"""Serve the local Braintrust + Anthropic sandbox until interrupted, for trying the commands by hand."""

import signal
import threading
from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand, CommandError

from braintrust_ops.management.base import positive_int
from braintrust_ops_sandbox import ANTHROPIC_KEY, BRAINTRUST_KEY, PROJECT_ID, Sandbox


class Command(BaseCommand):
    # Not the host's system checks: Sefaria-Project's need MongoDB (braintrust_ops.management.base says more),
    # and the sandbox needs nothing of the host but its settings.
    requires_system_checks: list[str] = []
    help = (
        "Serve a local emulation of the Braintrust and Anthropic APIs, seeded with sample Sefaria chatbot "
        "logs, on 127.0.0.1. Development and tests only: it accepts only its own fake keys."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--port", type=int, default=8765, help="Port to listen on (0: any free port). Default 8765."
        )
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on. Default 127.0.0.1.")
        parser.add_argument("--empty", action="store_true", help="Start with no tags, datasets or logs.")
        parser.add_argument(
            "--logs", type=positive_int, default=0, help="Add this many extra one-span logs over the last 24 hours."
        )
        parser.add_argument(
            "--claude-latency", type=float, default=0.0, help="Seconds the fake Claude waits before answering."
        )

    def handle(self, *args, **options):
        sandbox = Sandbox(seed=not options["empty"], port=options["port"], host=options["host"])
        if options["logs"]:
            start = datetime.now(UTC) - timedelta(hours=24)
            step = timedelta(hours=24) / options["logs"]
            sandbox.state.add_logs(
                options["logs"],
                created=lambda index: start + step * index,
                input={"messages": [{"role": "user", "content": "Where is Shabbat candle lighting discussed?"}]},
                output="In the Talmud, Shabbat 21b-23b.",
            )
        sandbox.claude_latency = options["claude_latency"]
        # Before the banner: whoever reads it may signal at once.
        stopped = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopped.set())
        try:
            sandbox.start()
        except OSError as exc:
            raise CommandError(
                f"Could not listen on {options['host']}:{options['port']}: {exc}. Try --port 0."
            ) from exc
        self.stdout.write(
            f"Sandbox listening on {sandbox.url} ({sandbox.state.log_count()} log rows). Point the app at it:"
        )
        self.stdout.write(
            f"  export BRAINTRUST_API_URL={sandbox.url} ANTHROPIC_BASE_URL={sandbox.url}\n"
            f"  export BRAINTRUST_PROJECT_ID={PROJECT_ID}\n"
            f"  export BRAINTRUST_API_KEY={BRAINTRUST_KEY} ANTHROPIC_API_KEY={ANTHROPIC_KEY}\n"
            "Stop it with Ctrl-C."
        )
        self.stdout.flush()
        stopped.wait()
        sandbox.stop()
        self.stdout.write("Sandbox stopped.")
