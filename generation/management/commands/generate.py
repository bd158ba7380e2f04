from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from generation.llm import default_generator
from generation.management.decoding import add_decoding_arguments, decoding_parameters
from generation.models import PromptMode
from generation.pipeline import batch_count, run_batch
from generation.runs import create_run


class Command(BaseCommand):
    help = "Start a generation run: queued for the Celery workers, --inline in this process, or for --contributors."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=8)
        parser.add_argument("--mode", choices=PromptMode.values, default=PromptMode.TOP_DOWN)
        parser.add_argument("--seed-text", action="append", default=[], help="A title or topic (seeded mode).")
        parser.add_argument("--model", default=None, help="Hub id or local directory; default GENERATOR_MODEL.")
        add_decoding_arguments(parser)
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--inline", action="store_true", help="Run the batches here instead of queueing them.")
        where.add_argument(
            "--contributors", action="store_true", help="Hand the batches out to outside contributors (/api/work)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        parameters = decoding_parameters(options)
        run = create_run(
            mode=options["mode"],
            model_name=options["model"] or default_generator(),
            parameters=parameters,
            seed=options["seed"],
            seeds=options["seed_text"],
            requested_count=options["count"],
            queue=not options["inline"],
            for_contributors=options["contributors"],
        )
        if options["contributors"]:
            self.stdout.write(f"Run {run.pk}: {batch_count(run)} work units for contributors at /api/work.")
            return
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
