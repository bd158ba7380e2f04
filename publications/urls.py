from django.urls import path, re_path

from publications import views

app_name = "publications"
urlpatterns = [
    path("browse/", views.browse, name="browse"),
    path("browse/<int:year>/<int:month>/", views.month, name="month"),
    path("browse/<int:year>/<int:month>/<int:day>/", views.day, name="day"),
    path("browse/runs/", views.runs, name="runs"),
    path("browse/runs/<int:run_id>/", views.run, name="run"),
    path("browse/classification/", views.classifications, name="classifications"),
    path("browse/classification/<str:code>/", views.classification, name="classification"),
    path("publications/", views.evidence, name="evidence"),
    path("publications/procedure/", views.procedure, name="procedure"),
    path("publications/index.json", views.index, name="index"),
    # The examiner's record of a search session: evidence for the file, made from the browser's history.
    path("search/record/", views.search_record, name="search_record"),
    path("publications/tsa-certificates.pem", views.tsa_certificates, name="tsa_certificates"),
    re_path(r"^publications/(?P<date>\d{4}-\d{2}-\d{2})/manifest\.json$", views.manifest, name="manifest"),
    re_path(
        r"^publications/(?P<date>\d{4}-\d{2}-\d{2})/manifest\.json\.(?P<authority>[a-z0-9.-]+)\.tsr$",
        views.timestamp,
        name="timestamp",
    ),
    re_path(r"^publications/(?P<date>\d{4}-\d{2}-\d{2})/manifest\.json\.ots$", views.ots_proof, name="ots_proof"),
    re_path(r"^publications/(?P<date>\d{4}-\d{2}-\d{2})/documents\.jsonl\.gz$", views.dump, name="dump"),
]
