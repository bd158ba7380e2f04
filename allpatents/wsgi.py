import os

# A web worker embeds one short query at a time, which one thread does as fast as several; torch's
# default (a thread per core in every worker) oversubscribes the cores, and hybrid search got slower
# as clients were added (21 req/s with 1 client, 5.9 with 8). Set before anything imports torch.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "allpatents.settings")

application = get_wsgi_application()
