"""Native kernels, compiled on first use with the machine's C++ compiler (cached under VAR_DIR)."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from types import ModuleType

import torch

logger = logging.getLogger(__name__)


@functools.cache
def attention_kernel() -> ModuleType | None:
    """The fp16-KV attention kernel, or None where it can't be built or run (the engine then uses fp32 + SDPA)."""
    if torch.backends.cpu.get_cpu_capability() not in {"AVX2", "AVX512"}:
        return None
    from django.conf import settings
    from torch.utils.cpp_extension import load

    build = Path(settings.VAR_DIR) / "torch-extensions" / "attention"
    build.mkdir(parents=True, exist_ok=True)
    try:
        return load(
            name="allpatents_attention",
            sources=[str(Path(__file__).with_name("attention.cpp"))],
            extra_cflags=["-O3", "-mavx2", "-mfma", "-mf16c", "-fopenmp"],
            extra_ldflags=["-fopenmp"],
            build_directory=str(build),
            verbose=False,
        )
    except Exception as error:  # no compiler, no headers: slower, not broken
        logger.warning("Could not build the fp16 attention kernel (%s); using fp32 attention.", error)
        return None
