from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from generation.models import Contributor, GenerationRun


@admin.register(GenerationRun)
class GenerationRunAdmin(admin.ModelAdmin):
    list_display = ("id", "mode", "model_name", "status", "requested_count", "accepted_count", "created_at")
    list_filter = ("status", "mode", "for_contributors")
    readonly_fields = ("generated_count", "accepted_count", "rejected_count", "rejections", "tokens_generated",
                       "cpu_seconds", "verification_cpu_seconds", "wall_seconds", "created_at", "started_at",
                       "finished_at")  # fmt: skip


@admin.register(Contributor)
class ContributorAdmin(admin.ModelAdmin):
    """Staff issue tokens here: adding a contributor shows its token once; revoking is an action."""

    list_display = ("public_name", "token_prefix", "standing", "created_at", "revoked_at")
    fields = ("display_name", "token_prefix", "issued_by", "created_at", "revoked_at", "throttled_until",
              "suspended_at")  # fmt: skip
    readonly_fields = ("token_prefix", "issued_by", "created_at", "revoked_at")
    actions = ("revoke", "reinstate")

    def save_model(self, request: HttpRequest, obj: Contributor, form: object, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        contributor, token = Contributor.issue(display_name=obj.display_name, issued_by=request.user)
        obj.pk, obj.token_prefix = contributor.pk, contributor.token_prefix
        obj._state.adding = False
        self.message_user(
            request, f"Token for {contributor.public_name} (shown only now; copy it): {token}", messages.WARNING
        )

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[Contributor]) -> None:
        revoked = queryset.filter(revoked_at=None).update(revoked_at=timezone.now())
        self.message_user(request, f"{revoked} token(s) revoked.")

    @admin.action(description="Lift throttling and suspension")
    def reinstate(self, request: HttpRequest, queryset: QuerySet[Contributor]) -> None:
        queryset.update(throttled_until=None, suspended_at=None)
