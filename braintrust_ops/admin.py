"""The page Sefaria staff open to see what last night's runs did. Read-only: the commands own the data."""

from django.contrib import admin
from django.db.models import Q
from django.utils.html import format_html_join

from braintrust_ops.conf import load_config
from braintrust_ops.exceptions import ConfigurationError
from braintrust_ops.models import CommandRun, DatasetInsertion, LogTag, TagBatch, TaggedLog


class ReadOnlyAdmin(admin.ModelAdmin):
    """Nothing here is edited by hand: a deleted ledger row would send a log to its dataset again."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class LogTagInline(admin.TabularInline):
    model = LogTag
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def _max_attempts() -> int:
    try:
        return load_config().tagging_max_attempts
    except ConfigurationError:
        return 3


class TaggingStateFilter(admin.SimpleListFilter):
    """Where a log stands for the next run: queued, tagged, or given up at the attempt limit."""

    title = "tagging state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("queued", "Queued for the next run"), ("given_up", "Given up (attempt limit reached)")]

    def queryset(self, request, queryset):
        given_up = Q(status=TaggedLog.Status.FAILED, attempts__gte=_max_attempts())
        if self.value() == "given_up":
            return queryset.filter(given_up)
        if self.value() == "queued":
            return queryset.filter(status__in=[TaggedLog.Status.PENDING, TaggedLog.Status.FAILED]).exclude(given_up)
        return queryset


def current_tagset() -> str | None:
    """The tag set the latest tag_logs run labelled with (its counters keep the fingerprint)."""
    for counters in CommandRun.objects.filter(command="tag_logs").values_list("counters", flat=True)[:20]:
        if (counters or {}).get("tagset_fingerprint"):
            return counters["tagset_fingerprint"]
    return None


class ProvenanceFilter(admin.SimpleListFilter):
    """Labels made under the latest run's tag set, or under another one (stale: --retag-stale redoes them)."""

    title = "label provenance"
    parameter_name = "provenance"

    def lookups(self, request, model_admin):
        return [("current", "Current tag set"), ("stale", "Another tag set (stale)")]

    def queryset(self, request, queryset):
        tagset = current_tagset()
        if self.value() not in ("current", "stale") or tagset is None:
            return queryset
        tagged = queryset.filter(status=TaggedLog.Status.TAGGED)
        if self.value() == "current":
            return tagged.filter(tagset_fingerprint=tagset)
        return tagged.exclude(tagset_fingerprint=tagset)


@admin.register(TaggedLog)
class TaggedLogAdmin(ReadOnlyAdmin):
    list_display = (
        "log_id",
        "logged_at",
        "status",
        "tag_list",
        "human_label",
        "attempts",
        "model",
        "prompt_version",
        "tagset_fingerprint",
        "last_run",
    )
    list_filter = (
        TaggingStateFilter,
        ProvenanceFilter,
        ("reviewed_at", admin.EmptyFieldListFilter),
        "status",
        ("tags__name", admin.AllValuesFieldListFilter),
        "model",
        "prompt_version",
        "last_run",
    )
    search_fields = ("=log_id", "=root_span_id")
    date_hierarchy = "logged_at"
    inlines = [LogTagInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("tags").select_related("last_run")

    @admin.display(description="tags")
    def tag_list(self, obj):
        return ", ".join(obj.tag_names)

    @admin.display(description="person's label")
    def human_label(self, obj):
        """A reviewer's label, which wins over Claude's (blank: none)."""
        return "" if obj.human_tags is None else ", ".join(obj.human_tags) or "(no tag)"


@admin.register(TagBatch)
class TagBatchAdmin(ReadOnlyAdmin):
    list_display = ("batch_id", "state", "request_count", "outcomes", "created_at", "collected_at", "run")
    list_filter = ("state", "shard")
    search_fields = ("=batch_id",)
    date_hierarchy = "created_at"


@admin.register(DatasetInsertion)
class DatasetInsertionAdmin(ReadOnlyAdmin):
    list_display = ("log_id", "dataset_name", "status", "attempts", "row_id", "created_at", "run")
    list_filter = ("status", "dataset_name", "run")
    search_fields = ("=log_id", "=dataset_id", "=row_id")
    date_hierarchy = "created_at"


# The counters worth a glance in the list; the full set is on each run's page.
HEADLINE_COUNTERS = (
    "sent",
    "tagged",
    "failed",
    "service_failures",
    "given_up",
    "inserted",
    "refused",
    "rows",
    "deleted",
)


def _counter(value):
    """A list (the refused logs, "id: why") one item a line, so an operator can read which and why."""
    if isinstance(value, list) and value:
        return format_html_join("", "<br>{}", ((item,) for item in value))
    return value


@admin.register(CommandRun)
class CommandRunAdmin(ReadOnlyAdmin):
    list_display = ("command", "started_at", "duration_display", "outcome", "headline", "error")
    list_filter = ("command", "outcome")
    search_fields = ("error",)
    date_hierarchy = "started_at"
    readonly_fields = ("counters_table",)

    @admin.display(description="duration")
    def duration_display(self, obj):
        duration = obj.duration
        if duration is None:
            return "running"
        seconds = int(duration.total_seconds())
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"

    @admin.display(description="counters")
    def headline(self, obj):
        counters = obj.counters or {}
        return ", ".join(
            f"{name.replace('_', ' ')} {counters[name]:,}"
            for name in HEADLINE_COUNTERS
            if isinstance(counters.get(name), int)
        )

    @admin.display(description="all counters")
    def counters_table(self, obj):
        rows = sorted((obj.counters or {}).items())
        return format_html_join(
            "", "<div><b>{}</b>: {}</div>", ((name.replace("_", " "), _counter(value)) for name, value in rows)
        )
