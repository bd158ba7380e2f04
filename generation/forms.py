from dataclasses import fields

from django import forms

from generation.engine import DecodingParameters
from generation.llm import default_generator
from generation.models import PromptMode

DEFAULTS = DecodingParameters()


class RunForm(forms.Form):
    mode = forms.ChoiceField(choices=PromptMode.choices, initial=PromptMode.TOP_DOWN)
    count = forms.IntegerField(min_value=1, max_value=100_000, initial=32, label="Patents to generate")
    seeds = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Seeded mode: titles or topics, one per line.",
    )
    model = forms.CharField(required=False, help_text="Hub id or local directory; empty for the configured generator.")
    temperature = forms.FloatField(min_value=0.05, max_value=2.0, initial=DEFAULTS.temperature)
    top_p = forms.FloatField(min_value=0.05, max_value=1.0, initial=DEFAULTS.top_p)
    top_k = forms.IntegerField(min_value=0, max_value=1000, initial=DEFAULTS.top_k, help_text="0: no top-k cut.")
    repetition_penalty = forms.FloatField(min_value=1.0, max_value=2.0, initial=DEFAULTS.repetition_penalty)
    max_new_tokens = forms.IntegerField(min_value=16, max_value=4096, initial=DEFAULTS.max_new_tokens)
    seed = forms.IntegerField(min_value=0, initial=0)
    structured = forms.BooleanField(
        required=False, initial=DEFAULTS.structured, help_text="Headings, claim numbers and citations kept in form."
    )
    early_abort = forms.BooleanField(
        required=False, initial=DEFAULTS.early_abort, help_text="Stop an output as soon as it fails a gate."
    )

    for_contributors = forms.BooleanField(
        required=False, label="Hand out to contributors", help_text="Outside contributors generate it over /api/work."
    )

    def clean_seeds(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["seeds"].splitlines() if line.strip()]

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        if cleaned.get("mode") == PromptMode.SEEDED and not cleaned.get("seeds"):
            self.add_error("seeds", "A seeded run needs at least one title or topic.")
        return cleaned

    def run_fields(self) -> dict[str, object]:
        """The form as generation.runs.create_run's arguments."""
        data = self.cleaned_data
        parameters = DecodingParameters(**{field.name: data[field.name] for field in fields(DecodingParameters)})
        return {
            "mode": data["mode"],
            "model_name": data["model"] or default_generator(),
            "parameters": parameters,
            "seed": data["seed"],
            "seeds": data["seeds"],
            "requested_count": data["count"],
            "for_contributors": data["for_contributors"],
        }
