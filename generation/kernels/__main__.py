"""`python -m generation.kernels`: the install step that builds the native kernels (a no-op once built)."""

import logging

from generation.kernels import build_attention_kernel

logging.basicConfig(level=logging.INFO, format="%(message)s")
if path := build_attention_kernel():
    logging.info("fp16 attention kernel: %s", path)
