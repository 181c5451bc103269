"""The page Sefaria staff open to see what last night's runs did. Read-only: the commands own the data."""

from django.contrib import admin

from braintrust_ops.models import CommandRun, DatasetInsertion, LogTag, TaggedLog


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class LogTagInline(admin.TabularInline):
    model = LogTag
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(TaggedLog)
class TaggedLogAdmin(ReadOnlyAdmin):
    list_display = ("log_id", "logged_at", "status", "tag_list", "attempts", "model", "last_run")
    list_filter = ("status", ("tags__name", admin.AllValuesFieldListFilter), "model", "last_run")
    search_fields = ("=log_id", "=root_span_id")
    date_hierarchy = "logged_at"
    inlines = [LogTagInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("tags").select_related("last_run")

    @admin.display(description="tags")
    def tag_list(self, obj):
        return ", ".join(obj.tag_names)


@admin.register(DatasetInsertion)
class DatasetInsertionAdmin(ReadOnlyAdmin):
    list_display = ("log_id", "dataset_name", "dataset_id", "row_id", "created_at", "run")
    list_filter = ("dataset_name", "run")
    search_fields = ("=log_id", "=dataset_id", "=row_id")
    date_hierarchy = "created_at"


@admin.register(CommandRun)
class CommandRunAdmin(ReadOnlyAdmin):
    list_display = ("command", "started_at", "finished_at", "outcome", "counters", "error")
    list_filter = ("command", "outcome")
    search_fields = ("error",)
    date_hierarchy = "started_at"
