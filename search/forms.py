"""The search box and its filters, as one GET form shared by the search page, search by text and exports."""

from __future__ import annotations

from functools import cached_property

from django import forms

from search import query as query_language
from search import searching
from search.models import Origin

MODE_CHOICES = [
    ("", "Automatic"),
    ("fulltext", "Keyword"),
    ("semantic", "Semantic"),
    ("hybrid", "Hybrid"),
]
SORT_CHOICES = [("relevance", "Relevance"), ("date", "Newest first")]
OPERATOR_CHOICES = [("AND", "AND (all words)"), ("OR", "OR (any word, as in Patent Public Search)")]
RESULTS_PER_PAGE = 20


class FiltersForm(forms.Form):
    before = forms.DateField(
        required=False,
        label="Published before",
        help_text="For prior art to an application: its priority date.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    after = forms.DateField(required=False, label="Published after", widget=forms.DateInput(attrs={"type": "date"}))
    origin = forms.ChoiceField(required=False, choices=[("", "Any origin"), *Origin.choices])
    run = forms.IntegerField(required=False, min_value=1, label="Generation run")
    min_quality = forms.FloatField(required=False, min_value=0, max_value=1, label="Minimum quality")
    classification = forms.CharField(required=False, max_length=32, label="CPC class", help_text="e.g. H01M")

    def clean_classification(self) -> str:
        code = self.cleaned_data["classification"]
        if code and not searching.CPC_CODE.fullmatch(searching.cpc_code(code)):
            raise forms.ValidationError("A CPC subclass (H01M) or group (H01M10/052).")
        return code

    def clean(self) -> dict[str, object]:
        data = super().clean()
        before, after = data.get("before"), data.get("after")
        if before and after and after >= before:
            raise forms.ValidationError("'Published after' must be earlier than 'Published before'.")
        return data

    def filters(self) -> searching.Filters:
        data = self.cleaned_data
        return searching.Filters(
            before=data.get("before"),
            after=data.get("after"),
            origin=data.get("origin") or None,
            run=data.get("run"),
            min_quality=data.get("min_quality"),
            classification=data.get("classification") or None,
        )

    def described_filters(self) -> list[str]:
        """The filters in force, as a search record states them ("Published before: 2020-01-01")."""
        described = []
        for name in ("before", "after", "origin", "run", "min_quality", "classification"):
            value = self.cleaned_data.get(name)
            if value not in (None, ""):
                field = self.fields[name]
                shown = dict(field.choices).get(value, value) if isinstance(field, forms.ChoiceField) else value
                described.append(f"{field.label}: {shown}")
        return described

    @property
    def has_filters(self) -> bool:
        return self.is_valid() and bool(self.filters())


class SearchForm(FiltersForm):
    q = forms.CharField(required=False, label="Query", strip=True)
    mode = forms.ChoiceField(required=False, choices=MODE_CHOICES)
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES)
    op = forms.ChoiceField(required=False, choices=OPERATOR_CHOICES, label="Between bare words")
    page = forms.IntegerField(required=False, min_value=1)

    field_order = ["q", "mode", "before", "after", "origin", "run", "min_quality", "classification", "sort", "op"]

    def sets(self) -> dict[int, str]:
        """The earlier searches this query names (L3=…), as the browser's history sent them."""
        return {
            int(name[1:]): value
            for name, value in self.data.items()
            if isinstance(value, str) and query_language.SET_REFERENCE.fullmatch(name)
        }

    @cached_property
    def expanded_query(self) -> str:
        """The query as it runs: its L-numbers replaced by their sets' queries (once per request)."""
        try:
            return query_language.expand_sets(self.cleaned_data["q"], self.sets())
        except query_language.QuerySyntaxError as error:
            raise searching.SearchError(str(error)) from None

    def search(self, *, limit: int = RESULTS_PER_PAGE, snippets: bool = True) -> searching.Results:
        data = self.cleaned_data
        page = data.get("page") or 1
        return searching.search(
            self.expanded_query,
            mode=data.get("mode") or None,
            filters=self.filters(),
            sort=data.get("sort") or "relevance",
            offset=(page - 1) * limit,
            limit=limit,
            default_operator=data.get("op") or "AND",
            snippets=snippets,
        )


class TextSearchForm(FiltersForm):
    text = forms.CharField(
        label="Claim or application text",
        max_length=searching.MAX_TEXT_LENGTH,
        widget=forms.Textarea(attrs={"rows": 10}),
    )
