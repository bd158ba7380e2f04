"""Loaded by pytest before Django (see addopts in pyproject.toml).

The suite runs against its own embedded PostgreSQL and Valkey under var/test,
so it can run while `make run` serves the real data from var/.
"""

import os
from pathlib import Path

os.environ.setdefault("VAR_DIR", str(Path(__file__).resolve().parent.parent / "var" / "test"))
os.environ.setdefault("DEBUG", "1")
# Tests never reach the model hub (our machines can't): fail fast instead of retrying.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The suite sends hundreds of searches a minute from one address; tests of the limits set their own.
for name in ("RATE_LIMIT_SEARCH", "RATE_LIMIT_API", "RATE_LIMIT_LOGIN"):
    os.environ.setdefault(name, "1000000/m")
