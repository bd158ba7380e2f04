from django.contrib import admin
from django.contrib.sitemaps import views as sitemap_views
from django.urls import include, path

from generation import contributor_api
from generation.views import contributors
from generation.work import WorkRefused
from publications.feeds import LatestPublications
from publications.sitemaps import SITEMAPS
from publications.views import robots
from search.api import api

# The contributors' endpoints are part of the one API (its schema, its error shape), wired here so
# that search needs no import of generation.
api.add_router("/work", contributor_api.router)
api.add_exception_handler(WorkRefused, contributor_api.refused)
api.add_exception_handler(contributor_api.AuthenticationError, contributor_api.unauthorized)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("runs/", include("generation.urls")),
    path("contributors/", contributors, name="contributors"),
    path("feed.atom", LatestPublications(), name="feed"),
    path("robots.txt", robots, name="robots"),
    path(
        "sitemap.xml",
        sitemap_views.index,
        {"sitemaps": SITEMAPS, "sitemap_url_name": "sitemap-section"},
        name="sitemap",
    ),
    path("sitemap-<section>.xml", sitemap_views.sitemap, {"sitemaps": SITEMAPS}, name="sitemap-section"),
    path("", include("publications.urls")),
    path("", include("search.urls")),
]
