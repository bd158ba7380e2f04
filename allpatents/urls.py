from django.contrib import admin
from django.contrib.sitemaps import views as sitemap_views
from django.urls import include, path

from publications.feeds import LatestPublications
from publications.sitemaps import SITEMAPS
from publications.views import robots
from search.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("runs/", include("generation.urls")),
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
