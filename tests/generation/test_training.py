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
) -> None:  # type: ignore[no-untyped-def]
    output = tmp_path / "tiny"

    call_command(
        "train_generator", "--output", str(output), "--steps", "30", "--hidden-size", "32",
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
