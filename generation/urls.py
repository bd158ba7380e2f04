from django.urls import path

from generation import views

app_name = "generation"
urlpatterns = [
    path("", views.runs, name="runs"),
    path("<int:run_id>/", views.run, name="run"),
    path("<int:run_id>/progress/", views.run_progress, name="progress"),
    path("<int:run_id>/cancel/", views.cancel, name="cancel"),
]
