"""The engine computes what transformers computes, samples as it samples, and stops where a patent ends."""

import pytest
import torch
from transformers import AutoTokenizer, GPTNeoXConfig, GPTNeoXForCausalLM
from transformers.generation.logits_process import (
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from generation.codecs import TokenizerCodec
from generation.engine import PatentEngine, Request
from generation.llm import BOTTOM_UP_PROMPT, TOP_DOWN_PROMPT, DecodingParameters
from generation.training import KL3M_TOKENIZER

PROMPTS = [TOP_DOWN_PROMPT, BOTTOM_UP_PROMPT, f"{TOP_DOWN_PROMPT}\nBicycle bell"]


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(KL3M_TOKENIZER)


@pytest.fixture(scope="module")
def codec(tokenizer) -> TokenizerCodec:
    return TokenizerCodec(tokenizer)


@pytest.fixture(scope="module")
def model() -> GPTNeoXForCausalLM:
    torch.manual_seed(0)
    config = GPTNeoXConfig(
        vocab_size=32768, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        rotary_pct=0.25, tie_word_embeddings=False, use_parallel_residual=True, attention_bias=True,
        bos_token_id=0, eos_token_id=1, pad_token_id=2, max_position_embeddings=512,
    )  # fmt: skip
    return GPTNeoXForCausalLM(config).eval()


@pytest.mark.parametrize(("fp16_cache", "tolerance"), [(False, 1e-5), (True, 1e-3)])
def test_prefill_and_cached_decoding_give_transformers_logits(model, codec, tokenizer, fp16_cache, tolerance) -> None:
    engine = PatentEngine(model, codec, slots=3, max_length=64, fp16_cache=fp16_cache)
    assert (engine.kernel is not None) == fp16_cache
    ids = tokenizer(f"{TOP_DOWN_PROMPT}\nA hose reel with a ratchet lock")["input_ids"]
    with torch.inference_mode():
        expected = model(torch.tensor([ids])).logits[0]
        prefill = engine._forward(torch.tensor([ids[:5]]), slice(1, 2), torch.tensor([0]))
        assert torch.allclose(prefill[0], expected[4], atol=tolerance)
        for position in range(5, len(ids)):
            decoded = engine._forward(torch.tensor([[ids[position]]]), slice(1, 2), torch.tensor([position]))
        assert torch.allclose(decoded[0], expected[-1], atol=tolerance)


def test_top_k_1_reproduces_transformers_greedy_search_in_every_slot(model, codec, tokenizer) -> None:
    # Six requests on two slots: sequences finish, leave, and new ones take their slots.
    engine = PatentEngine(model, codec, slots=2, max_length=64, fp16_cache=False)
    greedy = DecodingParameters(temperature=1.0, top_p=1.0, top_k=1, repetition_penalty=1.0, max_new_tokens=24)

    completions = list(
        engine.generate([Request(p, seed=i) for i, p in enumerate(PROMPTS * 2)], greedy, ignore_stops=True)
    )

    assert sorted(c.index for c in completions) == list(range(6))
    for completion in completions:
        encoded = tokenizer(PROMPTS[completion.index % 3], return_tensors="pt")
        expected = model.generate(**encoded, do_sample=False, max_new_tokens=24, min_new_tokens=24, pad_token_id=2)
        assert completion.text == tokenizer.decode(expected[0], skip_special_tokens=True)
        assert (completion.new_tokens, completion.finished) == (24, False)


def test_the_fp16_kernel_attends_each_sequence_to_its_own_positions() -> None:
    from torch.nn import functional

    from generation.kernels import attention_kernel

    torch.manual_seed(2)
    kernel = attention_kernel()
    keys, values = torch.randn(2, 3, 40, 64).half(), torch.randn(2, 3, 40, 64).half()
    query = torch.randn(2, 3, 4, 64)
    positions = torch.tensor([[9, 10, 11, 12], [30, 31, 32, 33]])  # two sequences of different lengths

    output = kernel.attend(query, keys, values, positions, 64**-0.5)

    visible = torch.arange(40)[None, None, :] <= positions[:, :, None]
    mask = torch.zeros(visible.shape).masked_fill_(~visible, float("-inf"))[:, None]
    expected = functional.scaled_dot_product_attention(query, keys.float(), values.float(), attn_mask=mask)
    assert torch.allclose(output, expected, atol=1e-5)


@pytest.mark.parametrize(
    "parameters",
    [
        DecodingParameters(temperature=0.5, top_p=0.9, top_k=50, repetition_penalty=1.2),
        DecodingParameters(temperature=1.3, top_p=0.5, top_k=0, repetition_penalty=1.0),
    ],
)
def test_sampling_filters_are_transformers_processors(parameters: DecodingParameters) -> None:
    torch.manual_seed(1)
    logits = torch.randn(3, 1000) * 4
    history = torch.randint(0, 1000, (3, 20))
    seen = torch.zeros(3, 1000, dtype=torch.bool).scatter(1, history, True)
    processors = LogitsProcessorList([RepetitionPenaltyLogitsProcessor(parameters.repetition_penalty)])
    processors.append(TemperatureLogitsWarper(parameters.temperature))
    if parameters.top_k:
        processors.append(TopKLogitsWarper(parameters.top_k))
    processors.append(TopPLogitsWarper(parameters.top_p))

    expected = processors(history, logits.clone())

    assert torch.equal(PatentEngine._filter(logits, seen, parameters), expected)


def test_a_sequence_depends_on_its_seed_not_on_its_neighbours(model, codec) -> None:
    engine = PatentEngine(model, codec, slots=4, max_length=64)
    parameters = DecodingParameters(temperature=1.0, top_p=0.95, max_new_tokens=20)

    alone = next(engine.generate([Request(TOP_DOWN_PROMPT, seed=42)], parameters, ignore_stops=True))
    crowd = [Request(BOTTOM_UP_PROMPT, seed=s) for s in range(5)] + [Request(TOP_DOWN_PROMPT, seed=42)]
    among = next(c for c in engine.generate(crowd, parameters, ignore_stops=True) if c.index == 5)
    other_seed = next(engine.generate([Request(TOP_DOWN_PROMPT, seed=43)], parameters, ignore_stops=True))

    assert among.text == alone.text
    assert other_seed.text != alone.text


@pytest.mark.parametrize(
    ("text", "complete"),
    [
        ("# Patent\n\n## Claims\n1. A reel.\n\n## Abstract\nA reel.\n\n## Title\nHose reel\n", True),
        ("# Patent\n\n## Claims\n1. A reel.\n\n## Abstract\nA reel.\n\n## Title\nHose reel", False),
        ("# Patent\n\n## Claims\n1. A reel.\n\n## Abstract\nA reel.\n\n## Title\n", False),
        ("# Patent\n\n## Title\nHose reel\n\n## Abstract\nA reel.\n", False),
    ],
)
def test_last_section_complete(text: str, complete: bool) -> None:
    assert PatentEngine.last_section_complete(text) is complete


def test_the_bundled_generator_loads_and_writes_both_orders_offline() -> None:
    from generation.llm import BUNDLED_GENERATOR, load_generator, sample

    generator = load_generator(str(BUNDLED_GENERATOR))
    requests = [Request(TOP_DOWN_PROMPT, seed=1), Request(BOTTOM_UP_PROMPT, seed=2)]

    samples = sample(generator, requests, DecodingParameters(max_new_tokens=32))

    assert [s.text.startswith(r.prompt) for s, r in zip(samples, requests, strict=True)] == [True, True]
    assert all(0 < s.new_tokens <= 32 for s in samples)
    assert generator.revision.startswith("sha256:")


@pytest.fixture(scope="module")
def bert_decoder():
    """A small random BERT decoder of the warm-started generator's kind, with MiniLM's tokenizer and codec."""
    from transformers import AutoTokenizer, BertConfig, BertLMHeadModel

    from generation.codecs import SectionTokenCodec
    from search.embedding import model_path

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=96,
        max_position_embeddings=96, is_decoder=True, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )  # fmt: skip
    return BertLMHeadModel(config).eval(), SectionTokenCodec(AutoTokenizer.from_pretrained(model_path()))


@pytest.mark.parametrize(("fp16_cache", "tolerance"), [(False, 1e-5), (True, 1e-3)])
def test_a_bert_decoder_gives_transformers_logits_through_the_cache(bert_decoder, fp16_cache, tolerance) -> None:
    model, codec = bert_decoder
    engine = PatentEngine(model, codec, slots=2, max_length=64, fp16_cache=fp16_cache)
    ids = codec.encode_prompt(f"{TOP_DOWN_PROMPT}\nA hose reel with a ratchet lock and a crank")
    with torch.inference_mode():
        expected = model(torch.tensor([ids])).logits[0]
        prefill = engine._forward(torch.tensor([ids[:4]]), slice(1, 2), torch.tensor([0]))
        assert torch.allclose(prefill[0], expected[3], atol=tolerance)
        for position in range(4, len(ids)):
            decoded = engine._forward(torch.tensor([[ids[position]]]), slice(1, 2), torch.tensor([position]))
        assert torch.allclose(decoded[0], expected[-1], atol=tolerance)


def test_a_bert_decoder_never_runs_past_its_learned_positions(bert_decoder) -> None:
    model, codec = bert_decoder

    engine = PatentEngine(model, codec, slots=2, max_length=2048, fp16_cache=False)
    completion = next(engine.generate([Request(TOP_DOWN_PROMPT, seed=0)], DecodingParameters(), ignore_stops=True))

    assert engine.max_length == 96
    assert len(codec.encode_prompt(TOP_DOWN_PROMPT)) + completion.new_tokens == 96
