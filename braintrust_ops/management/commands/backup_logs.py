"""backup_logs: the weekly job. A thin command: options in, ``services.backups`` does the work, a report out."""

from django.core.management.base import CommandError

from braintrust_ops.backup_files import EXCEL_CELL_LIMIT, FORMATS
from braintrust_ops.clients.braintrust import BraintrustClient
from braintrust_ops.exceptions import RemoteServiceError
from braintrust_ops.locks import command_lock
from braintrust_ops.management.base import (
    OpsCommand,
    iso_time,
    positive_int,
    recorded_options,
)
from braintrust_ops.services.backups import BackupReport, logs_backup
from braintrust_ops.services.runs import run_recorded
from braintrust_ops.stopping import stop_on_signals

# What the run record keeps of the command line.
RECORDED_OPTIONS = ("days", "since", "until", "output", "format", "gzip", "root_only")


class Command(OpsCommand):
    help = (
        "Export the project's Braintrust logs of the last N days (default 7, every span) to a spreadsheet-safe "
        "CSV file, or JSON lines, streamed page by page. The file appears only when complete (written under a "
        "temporary name, then renamed; mode 0600). No logs in the window: no file, exit 0."
    )
    required_settings = ("braintrust_api_key", "braintrust_project_id")
    interrupted_advice = "No backup file was written (the temporary one was removed); run backup_logs again."

    def add_arguments(self, parser):
        window = parser.add_mutually_exclusive_group()
        window.add_argument(
            "--days", type=positive_int, help="Back up the logs created in the last N days (default from settings: 7)."
        )
        window.add_argument("--since", type=iso_time, help="Start of the window (ISO 8601, UTC if no zone).")
        parser.add_argument("--until", type=iso_time, help="End of the window, exclusive (ISO 8601; default now).")
        parser.add_argument(
            "--output",
            metavar="PATH",
            help="The file to write: a new path, or a regular file, which is replaced (a device, FIFO, socket, "
            "directory or symbolic link is refused). Default: <BRAINTRUST_OPS_BACKUP_DIR>/"
            "logs_backup_YYYY-MM-DD.csv, the UTC date of the window's end; .jsonl for JSON lines, "
            ".gz appended with --gzip.",
        )
        parser.add_argument(
            "--format",
            choices=FORMATS,
            default="csv",
            help="csv (default; spreadsheet-safe, fixed columns) or jsonl (one JSON object per log, values untouched).",
        )
        parser.add_argument("--gzip", action="store_true", help="Compress the file with gzip.")
        parser.add_argument(
            "--root-only", action="store_true", help="Only root spans (one row per trace); default: every span."
        )

    def handle(self, *args, **opts):
        config = self.load_config()
        self.project_id = config.braintrust_project_id
        braintrust = BraintrustClient.from_config(config)
        try:
            with stop_on_signals():
                report = run_recorded(
                    command="backup_logs",
                    options=recorded_options(opts, RECORDED_OPTIONS),
                    config=config,
                    lock=command_lock("backup_logs"),
                    job=lambda run: logs_backup(
                        config=config,
                        braintrust=braintrust,
                        since=opts["since"],
                        until=opts["until"],
                        days=opts["days"],
                        output=opts["output"],
                        fmt=opts["format"],
                        gzip=opts["gzip"],
                        root_only=opts["root_only"],
                        run=run,
                    ),
                )
        except RemoteServiceError as exc:
            raise CommandError(f"{exc} No backup file was written; run backup_logs again once that is fixed.") from exc
        finally:
            braintrust.close()
        self.print_report(report)

    def print_report(self, report: BackupReport) -> None:
        window = f"{report.window_start:%Y-%m-%d %H:%M:%S} to {report.window_end:%Y-%m-%d %H:%M:%S} UTC"
        spans = "root spans" if report.root_only else "spans"
        if not report.written:
            self.say(f"No logs ({spans}) in project {self.project_id} from {window}: no file written.")
            return
        self.say(f"Window: {window} ({spans})")
        if report.unreadable:
            self.stderr.write(
                self.style.WARNING(
                    f"{report.unreadable} rows were nested too deep to read and are not in the file "
                    "(log_row_unreadable events name where they were)."
                )
            )
        if report.oversized_cells:
            self.stderr.write(
                self.style.WARNING(
                    f"{report.oversized_cells} cells are longer than {EXCEL_CELL_LIMIT:,} characters: the file holds "
                    "them whole, but Excel truncates them when it opens the file."
                )
            )
        self.say(
            f"Backed up {report.rows:,} rows ({report.pages} {'page' if report.pages == 1 else 'pages'}) "
            f"to {report.path}: "
            f"{report.bytes:,} bytes ({report.bytes / 2**20:.1f} MiB) in {report.elapsed_seconds:.1f}s",
            style=self.style.WARNING if self.failed_run else self.style.SUCCESS,
        )
