"""Structure-aware decoding writes headings in order and once, numbers claims in sequence, cites only earlier
claims, and lets an output that already failed a gate go at once."""

import re

import pytest
import torch
from transformers import AutoTokenizer, GPTNeoXConfig, GPTNeoXForCausalLM

from generation.checking import Rejection, split_claims, split_sections
from generation.codecs import TokenizerCodec
from generation.engine import DecodingParameters, PatentEngine, Request
from generation.llm import BOTTOM_UP_PROMPT, BUNDLED_GENERATOR, TOP_DOWN_PROMPT, load_generator
from generation.structure import BOTTOM_UP, TOP_DOWN, Guide
from generation.training import KL3M_TOKENIZER

_HEADING = re.compile(r"^#{1,2}\s+(?!Patent\b)(\w+)\s*$", re.MULTILINE)


@pytest.fixture(scope="module")
def codec() -> TokenizerCodec:
    return TokenizerCodec(AutoTokenizer.from_pretrained(KL3M_TOKENIZER))


@pytest.fixture(scope="module")
def guide(codec: TokenizerCodec) -> Guide:
    return Guide(codec, early_abort=False)


END = None  # the model draws its end token


def write(guide: Guide, codec: TokenizerCodec, prompt: str, drawn: list[str | None], limit: int = 400) -> str:
    """The text the guide writes when the model draws these pieces (each encoded on its own), one by one;
    a piece the guide rules out is passed over, as if the model had drawn the next one."""
    ids = codec.encode_prompt(prompt)
    state = guide.start(prompt, ids, limit)
    written: list[int] = []
    pieces = [
        token for piece in drawn for token in ([codec.eos_token_id] if piece is END else codec.continuation_ids(piece))
    ]
    while state.forced:
        written.append(guide.advance(state, codec.eos_token_id))  # whatever is drawn, the heading is written
    for token in pieces:
        allowed = torch.zeros(codec.vocabulary_size)
        guide.mask(state, allowed)
        if allowed[token] == float("-inf"):
            continue  # ruled out: the model draws its next piece instead
        written.append(guide.advance(state, token))
        while state.forced:
            written.append(guide.advance(state, codec.eos_token_id))
        if written[-1] == codec.eos_token_id:
            break
    return codec.decode(ids + written)


def test_the_model_writing_an_early_end_gets_the_next_heading_instead(guide, codec) -> None:
    text = write(guide, codec, TOP_DOWN_PROMPT, ["Hose reel", "\n\n", "A reel.", END, "A reel, comprising: a drum."])

    assert _HEADING.findall(text) == ["Title", "Abstract", "Claims"]
    sections = split_sections(text)[0]
    assert sections == {"Title": "Hose reel", "Abstract": "A reel.", "Claims": "1. A reel, comprising: a drum."}


def test_a_heading_written_twice_becomes_the_next_one(guide, codec) -> None:
    drawn = ["A reel, comprising: a drum.", "## Claims\n", "A reel.", "## Abstract\n", "Reel", "\n"]
    text = write(guide, codec, BOTTOM_UP_PROMPT, drawn)

    assert _HEADING.findall(text) == ["Claims", "Abstract", "Title"]
    sections = split_sections(text)[0]
    assert sections == {"Claims": "1. A reel, comprising: a drum.", "Abstract": "A reel.", "Title": "Reel"}


def test_claims_are_numbered_in_sequence_whatever_number_the_model_draws(guide, codec) -> None:
    drawn = ["A reel, comprising: a drum.", "\n", "7", ". The reel of claim 1.", "\n", "2", ". The reel.", "\n\n"]
    text = write(guide, codec, BOTTOM_UP_PROMPT, drawn)

    claims = split_claims(split_sections(text)[0]["Claims"])
    assert [claim["number"] for claim in claims] == [1, 2, 3]


def test_a_dependent_claim_may_cite_only_an_earlier_claim(guide, codec) -> None:
    prompt = "# Patent\n\n## Claims"
    ids = codec.encode_prompt(prompt)
    state = guide.start(prompt, ids, 400)
    for token in [*state.forced, *codec.continuation_ids("A reel.\n3. The reel of claim ")]:
        guide.advance(state, token)
    assert state.claim == 2
    logits = torch.zeros(codec.vocabulary_size)

    guide.mask(state, logits)

    allowed = {codec.token_texts[t] for t in guide.number_tokens.tolist() if logits[t] > float("-inf")}
    assert {"1", "2", "3"} & allowed == {"1"}


def test_a_section_is_not_left_empty(guide, codec) -> None:
    prompt = "# Patent\n\n## Title\nReel\n\n## Abstract"
    ids = codec.encode_prompt(prompt)
    state = guide.start(prompt, ids, 400)
    for token in state.forced.copy():
        guide.advance(state, token)
    logits = torch.zeros(codec.vocabulary_size)

    guide.mask(state, logits)

    blocked = logits == float("-inf")
    assert bool(blocked[codec.eos_token_id])
    assert bool(blocked[guide.is_heading].all())
    assert bool(blocked[codec.continuation_ids("\n\n")[0]])
    assert not bool(blocked[codec.continuation_ids("A")[0]])


def test_the_end_token_waits_for_a_complete_last_claim(guide, codec) -> None:
    prompt = "# Patent\n\n## Title\nReel\n\n## Abstract\nA reel.\n\n## Claims\n1. A reel, comprising"
    state = guide.start(prompt, codec.encode_prompt(prompt), 400)
    state.section = TOP_DOWN.index("Claims")
    state.line_text = "1. A reel, comprising"
    logits = torch.zeros(codec.vocabulary_size)

    guide.mask(state, logits)
    assert logits[codec.eos_token_id] == float("-inf")

    state.line_text += ": a drum."
    logits = torch.zeros(codec.vocabulary_size)
    guide.mask(state, logits)
    assert logits[codec.eos_token_id] == 0.0


def test_a_bottom_up_patent_leaves_its_claims_in_time_for_an_abstract_and_title(guide, codec) -> None:
    claim = "The reel of claim 1, wherein the drum turns."
    drawn = ["A reel, comprising: a drum.", *(piece for _ in range(40) for piece in ("\n", "2. ", claim))]
    text = write(guide, codec, BOTTOM_UP_PROMPT, drawn, limit=300)

    assert _HEADING.findall(text)[:2] == ["Claims", "Abstract"]


@pytest.fixture(scope="module")
def bundled():
    generator = load_generator(str(BUNDLED_GENERATOR))
    return PatentEngine(generator.model, generator.codec, slots=8, max_length=512)


@pytest.mark.parametrize(("prompt", "order"), [(TOP_DOWN_PROMPT, list(TOP_DOWN)), (BOTTOM_UP_PROMPT, list(BOTTOM_UP))])
def test_a_trained_model_never_writes_a_heading_out_of_order_or_a_claim_out_of_sequence(bundled, prompt, order) -> None:
    parameters = DecodingParameters(max_new_tokens=240, early_abort=False)

    completions = list(bundled.generate([Request(prompt, seed=seed) for seed in range(16)], parameters))

    assert len(completions) == 16
    for completion in completions:
        headings = _HEADING.findall(completion.text)
        assert headings == order[: len(headings)]
        claims = split_claims(split_sections(completion.text)[0].get("Claims", ""))
        assert [claim["number"] for claim in claims] == list(range(1, len(claims) + 1))
        for claim in claims:
            cited = [int(n) for n in re.findall(r"\bclaims?\s+(\d+)", claim["text"], re.IGNORECASE)]
            assert all(n < claim["number"] for n in cited)


@pytest.fixture(scope="module")
def random_engine(codec):
    torch.manual_seed(0)
    config = GPTNeoXConfig(
        vocab_size=32768, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        rotary_pct=0.25, bos_token_id=0, eos_token_id=1, pad_token_id=2, max_position_embeddings=512,
    )  # fmt: skip
    return PatentEngine(GPTNeoXForCausalLM(config).eval(), codec, slots=1, max_length=512)


def test_an_output_that_failed_a_gate_leaves_its_slot_to_the_next_prompt(random_engine) -> None:
    # Random weights write salad: claim 1 has no transition, so it fails once the budget ends it.
    parameters = DecodingParameters(max_new_tokens=200)
    requests = [Request(BOTTOM_UP_PROMPT, seed=seed) for seed in range(3)]

    completions = list(random_engine.generate(requests, parameters))

    assert sorted(c.index for c in completions) == [0, 1, 2]  # one slot, taken in turn
    assert [c.aborted for c in completions] == [Rejection.CLAIM_1_FORM] * 3
    assert all(c.new_tokens < 200 for c in completions)
    assert all("## Abstract" not in c.text for c in completions)


def test_a_title_past_its_word_limit_is_aborted_while_it_is_written(codec) -> None:
    guide = Guide(codec, early_abort=True)
    prompt = TOP_DOWN_PROMPT
    state = guide.start(prompt, codec.encode_prompt(prompt), 2000)  # a title budget of 160 tokens

    for token in [*state.forced, *codec.continuation_ids(" ".join(["reel"] * 40))]:
        guide.advance(state, token)

    assert state.aborted == Rejection.OVERLONG_FIELD
