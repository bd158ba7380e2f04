import json
import time
from dataclasses import replace
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from generation.calibration import WEAK_OUTPUTS
from generation.checking import check_patent
from generation.engine import DecodingParameters
from generation.likelihood import score_sample
from generation.llm import (
    BOTTOM_UP_PROMPT,
    BUNDLED_GENERATOR,
    TOP_DOWN_PROMPT,
    Generator,
    Request,
    load_generator,
    sample,
)
from generation.training import EXTRA_CORPUS, bottom_up_text, read_corpus, top_down_text

# Seeds far from the ones the thresholds were set on (1,000-1,063 and 20,000-20,095): a held-out set.
HELD_OUT_SEED = 900_000


class Command(BaseCommand):
    help = (
        "The contributors' likelihood check on held-out texts: share accepted of genuine samples, samples at "
        "other decoding settings, human-written patents and another model's text; and its cost against "
        "generating. Prints one JSON line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model", default=str(BUNDLED_GENERATOR), help="The generator (default: the bundled one).")
        parser.add_argument("--samples", type=int, default=64, help="Genuine samples (others: half as many).")
        parser.add_argument("--max-new-tokens", type=int, default=400)

    def handle(self, *args: Any, model: str, samples: int, max_new_tokens: int, **options: Any) -> None:
        generator = load_generator(model)
        parameters = DecodingParameters(max_new_tokens=max_new_tokens)
        others = max(1, samples // 2)
        started = time.process_time()
        genuine = _sampled(generator, parameters, samples, HELD_OUT_SEED)
        generating = time.process_time() - started
        kinds = {
            "genuine": genuine,
            "temperature_0.6": _sampled(generator, replace(parameters, temperature=0.6), others, HELD_OUT_SEED),
            "temperature_1.0": _sampled(generator, replace(parameters, temperature=1.0), others, HELD_OUT_SEED),
            "no_nucleus_no_penalty": _sampled(
                generator, replace(parameters, top_p=1.0, repetition_penalty=1.0), others, HELD_OUT_SEED
            ),
            "human_written": _human(others),
            "other_model": _other_model(others),
        }
        accepted: dict[str, float] = {}
        scoring = 0.0
        for kind, texts in kinds.items():
            started = time.process_time()
            scores = [
                score_sample(generator, prompt, text, parameters, tokens=tokens) for prompt, text, tokens in texts
            ]
            if kind == "genuine":
                scoring = time.process_time() - started
            accepted[kind] = round(sum(score.plausible for score in scores) / len(scores), 3)
            self.stderr.write(f"{kind}: {len(scores)} texts, {accepted[kind]:.3f} accepted")
        # Only texts that passed every gate are scored on the server; the rest cost nothing more.
        passing = sum(check_patent(text, finished=True).accepted for _, text, _ in genuine) / len(genuine)
        self.stdout.write(
            json.dumps(
                {
                    "model": generator.name,
                    "revision": generator.revision,
                    "accepted": accepted,
                    "counts": {kind: len(texts) for kind, texts in kinds.items()},
                    "generation_cpu_seconds_per_output": round(generating / samples, 3),
                    "scoring_cpu_seconds_per_output": round(scoring / samples, 3),
                    "genuine_gate_pass_share": round(passing, 3),
                    "verification_share_of_generation": round(scoring * passing / generating, 4),
                    "verification_share_if_every_output_were_scored": round(scoring / generating, 3),
                }
            )
        )


# (prompt, text, token ids as drawn, or None for a text from elsewhere: it is re-tokenised)
Text = tuple[str, str, tuple[int, ...] | None]


def _sampled(generator: Generator, parameters: DecodingParameters, count: int, seed: int) -> list[Text]:
    prompts = [TOP_DOWN_PROMPT if index % 2 == 0 else BOTTOM_UP_PROMPT for index in range(count)]
    outputs = sample(generator, [Request(prompt, seed=seed + i) for i, prompt in enumerate(prompts)], parameters)
    # Early abort stops an output at the gate it failed: the server never scores those.
    return [
        (prompt, output.text, output.tokens)
        for prompt, output in zip(prompts, outputs, strict=True)
        if not output.aborted
    ]


def _human(count: int) -> list[Text]:
    records = read_corpus([EXTRA_CORPUS])[:count]
    return [
        (TOP_DOWN_PROMPT, top_down_text(r["title"], r["abstract"], r["claims"]), None)
        if index % 2 == 0
        else (BOTTOM_UP_PROMPT, bottom_up_text(r["title"], r["abstract"], r["claims"]), None)
        for index, r in enumerate(records)
    ]


def _other_model(count: int) -> list[Text]:
    texts = [json.loads(line)["text"] for line in WEAK_OUTPUTS.read_text().splitlines() if line][-count:]
    return [(TOP_DOWN_PROMPT if text.startswith(TOP_DOWN_PROMPT) else BOTTOM_UP_PROMPT, text, None) for text in texts]
