from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from generation.llm import DecodingParameters, default_generator
from generation.models import PromptMode
from generation.pipeline import batch_count, run_batch
from generation.runs import create_run

DEFAULTS = DecodingParameters()


class Command(BaseCommand):
    help = "Start a generation run: queued for the Celery workers, or --inline in this process."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=8)
        parser.add_argument("--mode", choices=PromptMode.values, default=PromptMode.TOP_DOWN)
        parser.add_argument("--seed-text", action="append", default=[], help="A title or topic (seeded mode).")
        parser.add_argument("--model", default=None, help="Hub id or local directory; default GENERATOR_MODEL.")
        parser.add_argument("--temperature", type=float, default=DEFAULTS.temperature)
        parser.add_argument("--top-p", type=float, default=DEFAULTS.top_p)
        parser.add_argument("--top-k", type=int, default=DEFAULTS.top_k)
        parser.add_argument("--repetition-penalty", type=float, default=DEFAULTS.repetition_penalty)
        parser.add_argument("--max-new-tokens", type=int, default=DEFAULTS.max_new_tokens)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--unstructured", action="store_true", help="Sample without structure-aware decoding (and early abort)."
        )
        parser.add_argument("--no-early-abort", action="store_true", help="Finish outputs that already failed a gate.")
        parser.add_argument("--inline", action="store_true", help="Run the batches here instead of queueing them.")

    def handle(self, *args: Any, **options: Any) -> None:
        parameters = DecodingParameters(
            temperature=options["temperature"],
            top_p=options["top_p"],
            top_k=options["top_k"],
            repetition_penalty=options["repetition_penalty"],
            max_new_tokens=options["max_new_tokens"],
            structured=not options["unstructured"],
            early_abort=not options["no_early_abort"],
        )
        run = create_run(
            mode=options["mode"],
            model_name=options["model"] or default_generator(),
            parameters=parameters,
            seed=options["seed"],
            seeds=options["seed_text"],
            requested_count=options["count"],
            queue=not options["inline"],
        )
        if not options["inline"]:
            self.stdout.write(f"Queued run {run.pk}: {batch_count(run)} batches on the generation queue.")
            return
        for batch in range(batch_count(run)):
            run_batch(run_id=run.pk, batch=batch)
        run.refresh_from_db()
        self.stdout.write(
            f"Run {run.pk}: {run.generated_count} generated, {run.accepted_count} published "
            f"(hit rate {run.hit_rate:.1%}), {run.tokens_generated} tokens in {run.cpu_seconds:.0f} CPU-s; "
            f"rejected by reason: {run.rejections}"
        )
