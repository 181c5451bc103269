"""evaluate_tagging: a labeller over the logs people reviewed, recorded as a Braintrust experiment.
A thin command over ``services.evaluation``."""

from pathlib import Path

from django.core.management.base import CommandError

from braintrust_ops.clients.braintrust import BraintrustClient
from braintrust_ops.clients.claude import ClaudeClient
from braintrust_ops.management.base import OpsCommand, agreement_line, figure, positive_int
from braintrust_ops.printable import printable
from braintrust_ops.services.evaluation import EvaluationOptions, EvaluationReport, labeller_evaluate
from braintrust_ops.stopping import stop_on_signals

MAX_PROMPT_BYTES = 200_000


class Command(OpsCommand):
    help = (
        "Label the logs people reviewed with the current labeller, or a candidate (--model, --prompt-file), and "
        "record the result as a Braintrust experiment: per log exact match and Jaccard, per tag precision and "
        "recall against people's labels. Nothing is stored here."
    )
    required_settings = ("braintrust_api_key", "braintrust_project_id")

    def add_arguments(self, parser):
        parser.add_argument("--model", help="A candidate Claude model (default: BRAINTRUST_OPS_TAGGING_MODEL).")
        parser.add_argument(
            "--prompt-file",
            type=Path,
            help="A candidate system prompt, in place of the built one; its version is its text's hash.",
        )
        parser.add_argument("--limit", type=positive_int, help="At most this many reviewed logs, newest first.")
        parser.add_argument(
            "--dataset",
            metavar="NAME_OR_ID",
            help="Evaluate against a Braintrust dataset's rows (input, expected answer, tags as the label) "
            "instead of the reviewed logs.",
        )
        parser.add_argument("--name", help="The experiment's name (default: model, prompt version and time).")
        parser.add_argument("--dry-run", action="store_true", help="Say what would be sent and its cost; send nothing.")

    def handle(self, *args, **opts):
        self.verbosity = opts["verbosity"]
        config = self.load_config()
        if not opts["dry_run"]:
            config.require("anthropic_api_key")
        options = EvaluationOptions(
            model=opts["model"].strip() if opts["model"] else None,
            prompt_text=_prompt(opts["prompt_file"]),
            limit=opts["limit"],
            name=opts["name"],
            dry_run=opts["dry_run"],
            dataset=opts["dataset"],
        )
        braintrust = BraintrustClient.from_config(config)
        try:
            with stop_on_signals():
                report = labeller_evaluate(
                    options=options,
                    config=config,
                    braintrust=braintrust,
                    claude_factory=lambda candidate, **kw: ClaudeClient.from_config(candidate, **kw),
                )
        finally:
            braintrust.close()
        self.print_report(report)

    def print_report(self, report: EvaluationReport) -> None:
        labeller = f"{printable(report.model)}, prompt {printable(report.prompt_version)}"
        if report.rows_left_out:
            self.say(f"Left out {report.rows_left_out} rows of the dataset that are no dataset event (no string id).")
        if report.dry_run:
            self.say(
                f"[dry run] Would label {report.examples} {report.examples_from} with {labeller}: about "
                f"{report.estimated_input_tokens} input tokens, about ${report.estimated_cost_usd}; and record them "
                "as a Braintrust experiment. Nothing was sent."
            )
            return
        self.say(
            f"Labelled {report.labelled} of {report.examples} {report.examples_from} with {labeller}"
            + (f" ({report.failed} failed; their errors are in the experiment's events)" if report.failed else "")
            + f"; {report.input_tokens} tokens in, {report.output_tokens} out (about ${report.cost_usd})"
        )
        if report.exact_match is not None:
            self.say(f"Exact match with people's labels: {report.exact_match:.2f}")
        for row in report.agreement:
            if row["true_positives"] or row["false_positives"] or row["false_negatives"]:
                self.say(f"  {agreement_line(row, labeller=False)}")
        for name, score in report.scores.items():
            against = (
                f" ({_signed(score.get('diff'))} against {printable(report.base_experiment_name)}: "
                f"{score.get('improvements')} better, {score.get('regressions')} worse)"
                if report.base_experiment_name and score.get("diff") is not None
                else ""
            )
            self.say(f"Score {printable(name)}: {figure(score.get('score'))}{against}")
        self.say(f"Experiment: {printable(report.experiment_name)} {printable(report.experiment_url)}")


def _prompt(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        data = path.read_bytes()[: MAX_PROMPT_BYTES + 1]
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"--prompt-file {printable(str(path))} cannot be read as UTF-8 text ({exc}).") from None
    if len(data) > MAX_PROMPT_BYTES or not text.strip():
        raise CommandError(f"--prompt-file {printable(str(path))} must hold a prompt of 1 to {MAX_PROMPT_BYTES} bytes.")
    return text


def _signed(value) -> str:
    return f"{value:+.2f}"
