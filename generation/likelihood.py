"""Did this text come from this model, sampled at these parameters? A teacher-forced test.

A contributor's upload is only text; the server can't rerun the sampler (another machine's floats
differ), but it can score the text under the model it names. For each token t of the continuation,
q_t is the distribution the engine draws from: the model's logits after the repetition penalty,
temperature, top-k and top-p, in transformers' order (generation/engine.py). Two figures follow:

- `outside`: the share of tokens q_t gives no probability at all (outside the nucleus). A sampler
  never draws them; structure-aware decoding, which writes headings and claim numbers itself, and
  re-tokenising the decoded text account for the few a genuine sample has.
- `z`: how far the text's log q is from what sampling q produces. Under sampling, log q_t(x_t) has
  mean -H(q_t) and variance Var_q[log q]; summed over the text and standardised, a genuine sample
  lands near 0. Text sampled colder (or written greedily) is too likely (z far above 0); text
  sampled hotter, written by a person, or by another model is too unlikely (z far below).

The thresholds are calibrated on our own samples and checked against human-written patents,
other temperatures and another model by `manage.py bench_likelihood` (README, "Contributors").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from generation.engine import DecodingParameters, PatentEngine, quantize_int8
from generation.llm import Generator

# Set on 160 samples of the bundled generator at the default parameters, scored with the int8 weights
# they were sampled with: outside at most 0.125, z from -5.4 to +2.3. Human-written patents score
# z -8.1 and below; README, "Contributors", has bench_likelihood's held-out table.
MAX_OUTSIDE = 0.15
Z_RANGE = (-6.0, 3.5)
# q is the nucleus mixed with this much of the untruncated distribution, so a token outside the
# nucleus (structure-aware decoding's own, or int8 drift at its edge) costs a lot but not infinity.
TAIL_WEIGHT = 0.03
# Positions scored per forward chunk of the penalty/nucleus arithmetic: bounds memory at V floats each.
_CHUNK = 128
# Tokens searched for the nucleus at each position (see _distributions).
_CANDIDATES = 1024


@dataclass(frozen=True)
class LikelihoodScore:
    tokens: int  # continuation tokens scored
    outside: float  # share of them outside the sampling distribution's support
    z: float  # standardised log-likelihood under the sampling distribution
    mean_log_q: float  # nats per token, for reports

    @property
    def plausible(self) -> bool:
        return self.outside <= MAX_OUTSIDE and Z_RANGE[0] <= self.z <= Z_RANGE[1]

    def as_dict(self) -> dict[str, float | int]:
        return {"tokens": self.tokens, "outside": round(self.outside, 4), "z": round(self.z, 2)}


_int8_models: dict[str, torch.nn.Module] = {}


def _int8_model(generator: Generator) -> torch.nn.Module:
    """The int8 copy of a generator's weights, made once per process (a generator is loaded once too)."""
    if generator.name not in _int8_models:
        _int8_models[generator.name] = quantize_int8(generator.model)
    return _int8_models[generator.name]


def _distributions(
    logits: torch.Tensor, seen: torch.Tensor, parameters: DecodingParameters
) -> tuple[torch.Tensor, torch.Tensor]:
    """The sampler's distribution (engine rules, in its order) and the same before top-k and top-p.

    Sorting the whole vocabulary at every position is what made scoring as slow as sampling; the
    nucleus is found among the most likely _CANDIDATES tokens instead, and a row where the engine
    would keep tokens beyond them (a flat distribution, or top_p very near 1) takes its full sort.
    """
    untruncated = torch.softmax(PatentEngine._filter(logits, seen, replace(parameters, top_k=0, top_p=1.0)), -1)
    if parameters.top_k <= 0 and parameters.top_p >= 1.0:
        return untruncated, untruncated
    count = min(untruncated.shape[-1], parameters.top_k if parameters.top_k > 0 else _CANDIDATES)
    values, order = torch.topk(untruncated, count, dim=-1)
    if parameters.top_k > 0:
        values = values / values.sum(-1, keepdim=True)  # top-k renormalises before top-p
    # Mass outside the candidates (none after top-k), summed directly: 1 minus the candidates' mass
    # rounds to 0 in fp32.
    outside = untruncated.scatter(1, order, 0.0).sum(-1, keepdim=True) if parameters.top_k <= 0 else None
    kept = torch.ones_like(values, dtype=torch.bool)
    if parameters.top_p < 1.0:
        # The engine's rule, summed from the least likely token up as it sums (so both round alike):
        # a token goes when it and every less likely one hold at most 1 - top_p.
        tail = values.flip(-1).cumsum(-1).flip(-1)
        kept = (tail if outside is None else tail + outside) > 1 - parameters.top_p
        kept[:, 0] = True
    mask = torch.zeros_like(untruncated, dtype=torch.bool).scatter_(1, order, kept)
    nucleus = untruncated * mask
    nucleus = nucleus / nucleus.sum(-1, keepdim=True)
    if outside is not None and parameters.top_p < 1.0:
        # Where the engine keeps some of the other tokens too (a flat row, or top_p very near 1), its full sort.
        flat = outside[:, 0] > 1 - parameters.top_p
        if flat.any():
            nucleus[flat] = torch.softmax(PatentEngine._filter(logits[flat], seen[flat], parameters), -1)
    return nucleus, untruncated


def score_sample(
    generator: Generator,
    prompt: str,
    text: str,
    parameters: DecodingParameters,
    *,
    int8: bool = True,
    tokens: Sequence[int] | None = None,
) -> LikelihoodScore:
    """Teacher-forced score of `text` (prompt + continuation, as uploaded) under `generator` at `parameters`,
    with the weights it was sampled with (the engine's int8 on a CPU, fp32 on a GPU): int8's drift alone
    moves a genuine sample's z by about one.

    `tokens` are the continuation's ids as drawn, when the caller has them (a contributor uploads them,
    and the server has checked that they decode to `text`): a byte-level tokenizer re-encodes a decoded
    sample into other tokens than the sampler drew, which would read as tokens outside the nucleus.
    """
    codec = generator.codec
    model = _int8_model(generator) if int8 else generator.model
    prompt_ids = codec.encode_prompt(prompt)
    prompt_length = len(prompt_ids)
    if tokens is None:
        ids = codec.encode_document(text)[:-1]  # no end token: one token proves nothing
    else:
        ids = [*prompt_ids, *(token for token in tokens if token != codec.eos_token_id)]
    limit = getattr(generator.model.config, "max_position_embeddings", len(ids))
    ids = ids[:limit]
    if len(ids) <= prompt_length:
        return LikelihoodScore(tokens=0, outside=1.0, z=-math.inf, mean_log_q=-math.inf)
    sequence = torch.tensor([ids])
    with torch.inference_mode():
        logits = model(sequence).logits[0, prompt_length - 1 : -1].float()  # predicts ids[prompt_length:]
        targets = sequence[0, prompt_length:]
        vocabulary = logits.shape[-1]
        # seen[t]: every token of the text before the one position t predicts, prompt included (the engine's rule).
        first_seen = torch.full((vocabulary,), len(ids), dtype=torch.long)
        for position in range(len(ids) - 1, -1, -1):
            first_seen[ids[position]] = position
        observed, expected, variance, outside = 0.0, 0.0, 0.0, 0
        for start in range(0, len(targets), _CHUNK):
            chunk = logits[start : start + _CHUNK]
            positions = torch.arange(start, start + len(chunk)) + prompt_length  # position of each target
            seen = first_seen[None, :] < positions[:, None]
            drawn_ids = targets[start : start + len(chunk), None]
            nucleus, untruncated = _distributions(chunk, seen, parameters)
            outside += int((nucleus.gather(1, drawn_ids) == 0).sum())
            q = (1 - TAIL_WEIGHT) * nucleus + TAIL_WEIGHT * untruncated
            log_q = torch.log(q.clamp_min(1e-30))
            mean = (q * log_q).sum(-1)  # E_q[log q]
            observed += float(log_q.gather(1, drawn_ids).sum())
            expected += float(mean.sum())
            variance += float(((q * log_q * log_q).sum(-1) - mean**2).sum())
    scored = len(targets)
    z = (observed - expected) / math.sqrt(variance) if variance > 0 else 0.0
    return LikelihoodScore(tokens=scored, outside=outside / scored, z=z, mean_log_q=observed / scored)
