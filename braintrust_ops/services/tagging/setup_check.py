"""A batch's faults alike, judged once the batch is collected: the logs' own, or the run's setup's.

A Message Batch answers a wrong setup (a model without strict tool use, a max_tokens the model refuses)
with the same ``invalid_request_error`` for every request, hours after the batch was sent, and each
result is stored, and charged to its log, as it is read (``batches``). So the faults that came
``SAME_ERROR_STREAK`` or more in a row alike are kept as suspects (``Tally``), and once the results are
in, one setup check decides, as in the interactive loop: labelled, the faults were the logs' own and stay
charged; refused too, every suspect gets its attempt back, the run sends no new batch, and it fails
saying which setting to check.
"""

import structlog
from django.db import transaction

from braintrust_ops.exceptions import PermanentServiceError
from braintrust_ops.models import TaggedLog
from braintrust_ops.services.tagging.dispatch import LOG_FAULT, SETUP_CHECK_TEXT, TAGGED, Call, Job, Tally, tag_one

logger = structlog.get_logger(__name__)


def suspects_judge(tally: Tally, call: Call) -> None:
    """Send the setup check for ``tally``'s suspects, and give their attempts back unless it is labelled."""
    if not tally.suspects:
        return
    check = Job(pk=None, log_id="(setup check)", user_text=SETUP_CHECK_TEXT)
    logger.info("tagging_setup_check", same_error_in_a_row=len(tally.suspects), error=tally.suspects[0][1])
    try:
        result = tag_one(check, call)
    except PermanentServiceError as exc:
        # A refused key or an unknown model: the setup is wrong in another way, and the run stops on it.
        _give_back(tally, f"the setup check was refused: {exc}")
        raise
    tally.input_tokens += result.input_tokens
    tally.output_tokens += result.output_tokens
    logger.info("tagging_setup_checked", outcome=result.kind, error=result.error)
    if result.kind == TAGGED:
        tally.suspects.clear()
    elif result.kind == LOG_FAULT:
        tally.setup_error = result.reason
        _give_back(tally, "a short harmless request was refused too: the run's setup is at fault")
    else:
        _give_back(tally, f"whose fault it was could not be told ({result.error})")


def _give_back(tally: Tally, why: str) -> None:
    """Undo what storing each suspect's fault cost its log: the attempt, and the relabelling failure of a label
    kept under --retag. A log given up by that attempt is queued again."""
    suspects, tally.suspects = tally.suspects, []
    for pk, _reason, counted_as_retry in suspects:
        with transaction.atomic():
            log = TaggedLog.objects.select_for_update().get(pk=pk)
            log.attempts = max(0, log.attempts - 1)
            if log.status == TaggedLog.Status.TAGGED:
                log.relabel_failures = max(0, log.relabel_failures - 1)
            log.last_error = f"{log.last_error} (attempt given back: {why})"[:2000]
            log.save(update_fields=["attempts", "relabel_failures", "last_error", "updated_at"])
        tally.failed -= 1
        tally.will_retry -= counted_as_retry
        tally.setup_failures += 1
        logger.warning("log_attempt_given_back", log_id=log.log_id, reason=why)
