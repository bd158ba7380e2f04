"""The project's own small generator: trained on the real sample, loadable by transformers."""

from pathlib import Path

import pytest
import torch
from django.core.management import call_command
from transformers import AutoModelForCausalLM, AutoTokenizer

from generation.training import training_texts
from tests.conftest import SAMPLE


def test_training_texts_hold_every_patent_in_both_orders() -> None:
    texts = training_texts(SAMPLE)

    assert len(texts) == 10
    assert sum(text.startswith("# Patent\n\n## Title\n") for text in texts) == 5
    assert sum(text.startswith("# Patent\n\n## Claims\n") for text in texts) == 5
    bottom_up = next(text for text in texts if text.startswith("# Patent\n\n## Claims"))
    assert bottom_up.index("## Abstract") < bottom_up.index("## Title")


@pytest.mark.django_db
def test_train_generator_saves_a_model_that_loads_and_generates(
    tmp_path: Path, settings, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "tiny"

    call_command(
        "train_generator", "--output", str(output), "--from-scratch", "--steps", "30", "--hidden-size", "32",
        "--layers", "1", "--heads", "2", "--block-size", "512", "--batch-size", "4", "--learning-rate", "0.005",
        "--corpus", str(SAMPLE), verbosity=0,
    )  # fmt: skip

    message = capsys.readouterr().out
    first, last = (float(x) for x in message.split("loss ")[1].split(",")[0].split(" -> "))
    assert last < first - 1  # it learned something from the patents
    model = AutoModelForCausalLM.from_pretrained(output)
    tokenizer = AutoTokenizer.from_pretrained(output)
    assert (
        model.config.model_type,
        model.config.rope_parameters["partial_rotary_factor"],
        model.config.tie_word_embeddings,
    ) == (
        "gpt_neox",
        0.25,
        True,
    )
    prompt = tokenizer("# Patent\n\n## Title", return_tensors="pt")
    torch.manual_seed(0)
    out = model.generate(**prompt, do_sample=True, max_new_tokens=20, pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] > prompt["input_ids"].shape[1]
    assert "kl3m-001-32k, CC BY 4.0" in (output / "README.md").read_text()


@pytest.mark.django_db
def test_a_generator_warm_started_from_minilm_loads_and_writes_patent_markdown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from generation.codecs import SectionTokenCodec
    from generation.llm import BOTTOM_UP_PROMPT, TOP_DOWN_PROMPT, DecodingParameters, Request, load_generator, sample

    output = tmp_path / "warm"

    call_command(
        "train_generator", "--output", str(output), "--warm-start", "minilm", "--steps", "2", "--block-size", "128",
        "--batch-size", "2", "--learning-rate", "0.0003", "--corpus", str(SAMPLE), verbosity=0,
    )  # fmt: skip

    generator = load_generator(str(output))
    assert isinstance(generator.codec, SectionTokenCodec)
    assert (output / "model.safetensors").stat().st_size < 50_000_000  # fp16 on disk
    samples = sample(
        generator,
        [Request(TOP_DOWN_PROMPT, seed=1), Request(BOTTOM_UP_PROMPT, seed=2)],
        DecodingParameters(max_new_tokens=24, early_abort=False),
    )
    assert [s.text.split("\n")[:3] for s in samples] == [["# Patent", "", "## Title"], ["# Patent", "", "## Claims"]]
    assert samples[1].text.startswith("# Patent\n\n## Claims\n1. ")
    assert "MiniLM" in (output / "README.md").read_text()


def test_the_section_token_codec_gives_back_the_markdown_it_was_given() -> None:
    from generation.codecs import SectionTokenCodec
    from search.embedding import stock_model_path

    codec = SectionTokenCodec(AutoTokenizer.from_pretrained(stock_model_path()))
    text = (
        "# Patent\n\n## Title\nSheet-metal cutter\n\n## Abstract\nA cutter (steel) cuts 5.5 mm sheet; it folds.\n\n"
        "## Claims\n1. A cutter, comprising: a blade.\n2. The cutter of claim 1, wherein the blade is 10% steel."
    )

    assert codec.decode(codec.encode_document(text)) == text
    assert codec.encode_prompt("# Patent\n\n## Claims") == [
        codec.bos_token_id,
        codec.tokenizer.convert_tokens_to_ids("[unused2]"),
    ]
