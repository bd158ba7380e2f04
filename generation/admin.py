from django.contrib import admin

from generation.models import GenerationRun


@admin.register(GenerationRun)
class GenerationRunAdmin(admin.ModelAdmin):
    list_display = ("id", "mode", "model_name", "status", "requested_count", "accepted_count", "created_at")
    list_filter = ("status", "mode")
    readonly_fields = ("generated_count", "accepted_count", "rejected_count", "rejections", "tokens_generated",
                       "cpu_seconds", "wall_seconds", "created_at", "started_at", "finished_at")  # fmt: skip
