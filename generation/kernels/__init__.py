"""Native kernels: built once by the install step, loaded by workers as plain shared libraries.

`make run`, `make test` and the Docker image run `python -m generation.kernels`, which compiles
the fp16 attention kernel with the machine's C++ compiler into `generation/kernels/build/`. A
worker only ever loads the finished library. It never compiles, so it never takes torch's
file baton: a worker killed while holding that baton (OOM, deploy, kill -9) used to leave the
lock file behind, and every later worker waited on it forever.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path
from types import ModuleType

import torch

logger = logging.getLogger(__name__)

MODULE_NAME = "allpatents_attention"
SOURCE = Path(__file__).with_name("attention.cpp")
BUILD_DIR = Path(__file__).with_name("build")
CFLAGS = ["-O3", "-mavx2", "-mfma", "-mf16c", "-fopenmp"]
LDFLAGS = ["-fopenmp"]


def cpu_supported() -> bool:
    return torch.backends.cpu.get_cpu_capability() in {"AVX2", "AVX512"}


def library_path() -> Path:
    """Where the library for this source, these flags and this torch lives: a change to any is a new file."""
    key = hashlib.sha256()
    key.update(SOURCE.read_bytes())
    key.update(" ".join([*CFLAGS, *LDFLAGS, torch.__version__]).encode())
    return BUILD_DIR / f"{MODULE_NAME}-{key.hexdigest()[:16]}.so"


def build_attention_kernel() -> Path | None:
    """Compile the kernel unless it is built already; None (with a warning) where it can't be.

    Each build compiles in a directory of its own and moves the result into place in one
    rename, so two installs at once, or one killed half-way, never leave a broken library.
    """
    target = library_path()
    if target.exists():
        return target
    if not cpu_supported():
        logger.warning("This CPU has no AVX2; the engine will use fp32 attention.")
        return None
    from torch.utils.cpp_extension import load

    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="build-", dir=BUILD_DIR))
    try:
        module = load(
            name=MODULE_NAME,
            sources=[str(SOURCE)],
            extra_cflags=CFLAGS,
            extra_ldflags=LDFLAGS,
            build_directory=str(scratch),
            verbose=False,
        )
        os.replace(module.__file__, target)
    except Exception as error:  # no compiler, no headers: slower, not broken
        logger.warning("Could not build the fp16 attention kernel (%s); the engine will use fp32 attention.", error)
        return None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


@functools.cache
def attention_kernel() -> ModuleType | None:
    """The fp16-KV attention kernel, or None where it isn't built or can't run (the engine then uses fp32 + SDPA)."""
    if not cpu_supported():
        return None
    path = library_path()
    if not path.exists():
        logger.warning(
            "The fp16 attention kernel is not built (run `python -m generation.kernels`); using fp32 attention."
        )
        return None
    try:
        spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
        if spec is None or spec.loader is None:
            raise ImportError("not a loadable extension module")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception as error:  # a library built for another machine or torch
        logger.warning("Could not load the fp16 attention kernel %s (%s); using fp32 attention.", path, error)
        return None
    return module
