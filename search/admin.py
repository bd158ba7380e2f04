from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from search.models import Patent, Tombstone

PUBLISHED_TEXT = ("title", "abstract", "claims", "text", "sha256", "published_at")


@admin.register(Patent)
class PatentAdmin(admin.ModelAdmin):
    list_display = ("public_id", "title", "origin", "source_id", "published_at", "quality_score")
    list_filter = ("origin",)
    search_fields = ("title", "source_id")
    date_hierarchy = "published_at"
    actions = ["withdraw"]
    exclude = ("embedding",)
    readonly_fields = (*PUBLISHED_TEXT, "origin", "source_id", "source_date", "generation_run", "model_name",
                       "model_revision", "prompt_mode", "decoding", "seed", "generated_at")  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # documents are published by imports and generation runs

    def has_delete_permission(self, request: HttpRequest, obj: Patent | None = None) -> bool:
        return False  # the database only lets a document go with a tombstone: use "withdraw"

    @admin.action(description="Withdraw the selected documents (their URLs answer 410)")
    def withdraw(self, request: HttpRequest, queryset: QuerySet[Patent]) -> None:
        for patent in queryset:
            patent.withdraw(reason=f"Withdrawn by {request.user.get_username()} from the admin")
        self.message_user(request, f"Withdrew {len(queryset)} documents.", messages.SUCCESS)


@admin.register(Tombstone)
class TombstoneAdmin(admin.ModelAdmin):
    list_display = ("public_id", "title", "published_at", "withdrawn_at", "reason")
    readonly_fields = ("id", "title", "source_id", "published_at", "sha256", "withdrawn_at", "reason")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
