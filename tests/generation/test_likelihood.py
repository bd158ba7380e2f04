"""The likelihood check's arithmetic: the sampler's own distribution, and z of a text sampled from it."""

from __future__ import annotations

from pathlib import Path

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from generation.engine import DecodingParameters, PatentEngine
from generation.likelihood import _distributions, score_sample
from generation.llm import TOP_DOWN_PROMPT, Request, load_generator, sample
from tests.factories import top_down


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    scale=st.floats(0.1, 8.0),
    temperature=st.floats(0.3, 1.5),
    top_p=st.floats(0.5, 1.0),
    top_k=st.sampled_from([0, 0, 5, 50]),
    penalty=st.sampled_from([1.0, 1.05, 1.3]),
)
def test_the_nucleus_found_among_candidates_is_the_engines_own(
    seed: int, scale: float, temperature: float, top_p: float, top_k: int, penalty: float
) -> None:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(6, 3000, generator=generator) * scale  # small scales: flat rows take the full sort
    seen = torch.rand(6, 3000, generator=generator) < 0.05
    parameters = DecodingParameters(temperature=temperature, top_p=top_p, top_k=top_k, repetition_penalty=penalty)

    nucleus, untruncated = _distributions(logits, seen, parameters)

    engine = torch.softmax(PatentEngine._filter(logits, seen, parameters), dim=-1)
    assert torch.allclose(nucleus, engine, atol=1e-6)
    assert torch.equal(nucleus > 0, engine > 0)
    assert torch.allclose(untruncated.sum(-1), torch.ones(6))


def test_samples_of_a_model_score_as_its_samples_and_a_person_s_patent_does_not(tiny_generator: Path) -> None:
    generator = load_generator(str(tiny_generator))
    # Unstructured: every token drawn from q itself. (Structure-aware decoding writes some tokens itself and
    # masks others, which shifts z; the thresholds allow for that, measured on the bundled generator.)
    parameters = DecodingParameters(
        temperature=0.8, top_p=0.95, repetition_penalty=1.05, max_new_tokens=160, structured=False
    )
    requests = [Request(TOP_DOWN_PROMPT, seed=seed) for seed in range(12)]

    samples = sample(generator, requests, parameters)
    scores = [score_sample(generator, TOP_DOWN_PROMPT, s.text, parameters, tokens=s.tokens) for s in samples]
    human = score_sample(generator, TOP_DOWN_PROMPT, top_down(), parameters)

    assert [score.plausible for score in scores] == [True] * 12, [score.as_dict() for score in scores]
    assert human.plausible is False, human.as_dict()
