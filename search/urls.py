from django.urls import path, re_path

from search import document_views, views

app_name = "search"
urlpatterns = [
    path("", views.home, name="home"),
    path("search/", views.search, name="search"),
    path("search/text/", views.search_by_text, name="by_text"),
    path("search/syntax/", views.syntax, name="syntax"),
    re_path(r"^search/export\.(?P<extension>csv|ris|bib)$", document_views.export, name="export"),
    path("patents/<str:public_id>/", document_views.patent, name="patent"),
    path("patents/<str:public_id>/similar/", document_views.similar, name="similar"),
    re_path(
        r"^patents/(?P<public_id>[^/.]+)\.(?P<extension>txt|json|pdf|bib|ris)$",
        document_views.download,
        name="download",
    ),
]
