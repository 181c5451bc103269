"""tag_logs: label the chatbot's new logs with Claude.

``run.logs_tag`` reads the stages in order; each stage is a module of its own, and all of them read one
``state.TaggingRun``: ``fetch`` (the window, stored as pending), ``queue`` (what is sent, within the budget),
``interactive`` and ``batch_mode`` (how it is sent), ``dry_run`` (the same window and queue, priced, nothing
written), ``cost`` and ``report``.
"""

from braintrust_ops.services.tagging.fetch import tagging_window
from braintrust_ops.services.tagging.options import TaggingOptions
from braintrust_ops.services.tagging.report import TaggingReport
from braintrust_ops.services.tagging.run import logs_tag

__all__ = ["TaggingOptions", "TaggingReport", "logs_tag", "tagging_window"]
