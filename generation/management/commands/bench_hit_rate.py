"""`manage.py bench_hit_rate`: the cost of a published invention, measured as `generate` measures it."""

import itertools
import json
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from generation.engine import DecodingParameters
from generation.llm import default_generator
from generation.management.decoding import add_decoding_arguments, decoding_parameters
from generation.models import Generation, GenerationRun, PromptMode
from generation.pipeline import HELD, batch_count, run_batch
from generation.runs import create_run


class Rollback(Exception):
    """Leaves the store as it was: the benchmark's inventions are written to a file, not published."""


class Command(BaseCommand):
    help = (
        "Generate --count outputs in each mode with the default parameters, through every gate and the novelty "
        "check against everything stored; prints one JSON line (hit rates, rejections, CPU-seconds per published "
        "invention, published per hour, distinct 4-grams) and writes the published outputs to a file."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=128, help="Outputs in each mode (default 128).")
        parser.add_argument("--model", default=None, help="Default: GENERATOR_MODEL.")
        add_decoding_arguments(parser)
        parser.add_argument("--output", type=Path, default=None, help="Default: VAR_DIR/bench/hit-rate-<time>.jsonl")
        parser.add_argument("--keep", action="store_true", help="Publish for real instead of rolling back.")

    def handle(self, *args: Any, **options: Any) -> None:
        parameters = decoding_parameters(options)
        output = (
            options["output"] or Path(settings.VAR_DIR) / "bench" / f"hit-rate-{time.strftime('%Y%m%dT%H%M%S')}.jsonl"
        )
        output.parent.mkdir(parents=True, exist_ok=True)
        try:
            with transaction.atomic():
                result = self._measure(options, parameters, output)
                if not options["keep"]:
                    raise Rollback
        except Rollback:
            pass
        self.stdout.write(json.dumps(result))

    def _measure(self, options: dict[str, Any], parameters: DecodingParameters, output: Path) -> dict[str, object]:
        runs = {}
        started = time.monotonic()
        for mode in (PromptMode.TOP_DOWN, PromptMode.BOTTOM_UP):
            run = create_run(
                mode=mode,
                model_name=options["model"] or default_generator(),
                parameters=parameters,
                seed=options["seed"],
                requested_count=options["count"],
                queue=False,
            )
            for batch in range(batch_count(run)):
                run_batch(run_id=run.pk, batch=batch)
            runs[mode] = GenerationRun.objects.get(pk=run.pk)
        wall = time.monotonic() - started
        published = list(
            Generation.objects.filter(run__in=runs.values(), accepted=True).select_related("patent").order_by("pk")
        )
        # A demonstration generator's outputs that passed everything: written too, for reading.
        held = list(Generation.objects.filter(run__in=runs.values(), reasons=[HELD]).order_by("pk"))
        with output.open("w", encoding="utf-8") as lines:
            for generation in published:
                record = {"mode": generation.run.mode, "seed": generation.seed, "text": generation.patent.text}
                lines.write(json.dumps(record) + "\n")
            for generation in held:
                record = {"mode": generation.run.mode, "seed": generation.seed, "text": generation.text, HELD: True}
                lines.write(json.dumps(record) + "\n")
        generated = sum(run.generated_count for run in runs.values())
        accepted = sum(run.accepted_count for run in runs.values())
        cpu = sum(run.cpu_seconds for run in runs.values())
        rejections: dict[str, int] = {}
        for run in runs.values():
            for reason, count in run.rejections.items():
                rejections[reason] = rejections.get(reason, 0) + count
        return {
            "model": options["model"] or default_generator(),
            "parameters": parameters.as_dict(),
            "generated": generated,
            "published": accepted,
            "held": len(held),  # passed every gate, from a generator whose outputs are held (never published)
            "hit_rate": round(accepted / generated, 4) if generated else None,
            "hit_rate_top_down": runs[PromptMode.TOP_DOWN].hit_rate,
            "hit_rate_bottom_up": runs[PromptMode.BOTTOM_UP].hit_rate,
            "rejections": dict(sorted(rejections.items(), key=lambda item: -item[1])),
            "tokens": sum(run.tokens_generated for run in runs.values()),
            "cpu_seconds": round(cpu, 1),
            "cpu_seconds_per_published": round(cpu / accepted, 1) if accepted else None,
            "wall_seconds": round(wall, 1),
            "published_per_hour": round(accepted * 3600 / wall, 1) if wall else None,
            "distinct_4gram_ratio": distinct_ngram_ratio(generation.patent.text for generation in published),
            "output": str(output),
        }


def distinct_ngram_ratio(texts: Any, n: int = 4) -> float | None:
    """Distinct word n-grams over all n-grams across the texts: near 1 for varied outputs, low for one text
    said many times."""
    grams = list(
        itertools.chain.from_iterable(
            zip(*(words[i:] for i in range(n)), strict=False) for words in (text.lower().split() for text in texts)
        )
    )
    return round(len(set(grams)) / len(grams), 4) if grams else None
