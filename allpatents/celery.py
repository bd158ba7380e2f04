"""The Celery app. Workers start with `celery -A allpatents worker -Q default,embedding`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "allpatents.settings")

app = Celery("allpatents")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
