"""How much int8 weights change a model's per-token log-likelihood on real patent text."""

from __future__ import annotations

import json
from dataclasses import dataclass

import torch

from generation.engine import quantize_int8
from generation.training import top_down_text
from search.importing import SAMPLE_CORPUS


@dataclass(frozen=True)
class Drift:
    tokens: int
    fp32_mean_logprob: float
    int8_mean_logprob: float
    mean_abs_drift: float  # mean over tokens of |log p_int8 - log p_fp32|
    top1_agreement: float  # share of positions where both pick the same most likely token


def token_logprobs(model: torch.nn.Module, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.inference_mode():
        logits = model(ids[None]).logits[0, :-1].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    return logprobs.gather(1, ids[1:, None])[:, 0], logits.argmax(dim=-1)


def measure_drift(model: torch.nn.Module, tokenizer, *, documents: int = 20, max_tokens: int = 512) -> Drift:
    quantized = quantize_int8(model)
    records = [json.loads(line) for line in SAMPLE_CORPUS.read_text().splitlines()[:documents]]
    drifts, fp32_total, int8_total, agree, count = [], 0.0, 0.0, 0, 0
    for record in records:
        text = top_down_text(record["title"], record["abstract"], record["claims"])
        ids = torch.tensor(tokenizer(text)["input_ids"][:max_tokens])
        exact, exact_top = token_logprobs(model, ids)
        approximate, approximate_top = token_logprobs(quantized, ids)
        drifts.append((approximate - exact).abs().sum().item())
        fp32_total += exact.sum().item()
        int8_total += approximate.sum().item()
        agree += int((exact_top == approximate_top).sum())
        count += len(exact)
    return Drift(
        tokens=count,
        fp32_mean_logprob=fp32_total / count,
        int8_mean_logprob=int8_total / count,
        mean_abs_drift=sum(drifts) / count,
        top1_agreement=agree / count,
    )
