import os

# A web worker embeds one short query at a time, which one thread does as fast as several; torch's
# default (a thread per core in every worker) oversubscribes the cores, and hybrid search got slower
# as clients were added (21 req/s with 1 client, 5.9 with 8). Set before anything imports torch.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "allpatents.settings")

application = get_wsgi_application()

# Each web worker loads the embedding model before it takes a request. Loaded on first use instead,
# most searches (hybrid is the default mode) need it, and the first one each worker served waited
# 3.5 s for it: the only answers over 2 s in bench_load.
import logging  # noqa: E402

from search.embedding import prepare  # noqa: E402 (needs the settings configured above)

try:
    prepare()
except Exception:
    # A model that doesn't load (a wrong EMBEDDING_MODEL, the hub unreachable) must not take the
    # published documents' pages down with it: the worker serves, and searches by meaning retry it.
    logging.getLogger(__name__).exception("The embedding model did not load; searches by meaning will try again.")
