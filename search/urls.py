from django.urls import path

from search import views

app_name = "search"
urlpatterns = [
    path("", views.home, name="home"),
    path("search/", views.search, name="search"),
    path("patents/<str:public_id>/", views.patent, name="patent"),
]
