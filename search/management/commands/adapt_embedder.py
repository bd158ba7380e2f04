"""Train the patent-adapted embedding model (see search/adapting.py)."""

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from search import adapting
from search.benchmarks.relevance import HALVES
from search.benchmarks.relevance import half as half_of
from search.embedding import stock_model_path


class Command(BaseCommand):
    help = (
        "Fine-tune all-MiniLM-L6-v2 on contrastive pairs from the bundled real patents of bench_relevance's "
        "tune half (about 5 minutes on two cores) and save it, fp16 safetensors, to --output. The last line "
        "is one JSON object."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", type=Path, default=Path("var/models/minilm-patents"))
        parser.add_argument("--base", default=None, help="The model to start from (default: stock all-MiniLM-L6-v2).")
        parser.add_argument("--epochs", type=int, default=adapting.Recipe.epochs)
        parser.add_argument("--batch-size", type=int, default=adapting.Recipe.batch_size)
        parser.add_argument("--learning-rate", type=float, default=adapting.Recipe.learning_rate)
        parser.add_argument("--seed", type=int, default=adapting.Recipe.seed)
        parser.add_argument("--documents", type=int, default=None, help="Train on the first N documents only.")
        parser.add_argument(
            "--half",
            choices=HALVES,
            default="tune",
            help="Which half of the documents to train on: bench_relevance reports on the other.",
        )

    def handle(
        self,
        *args: Any,
        output: Path,
        base: str | None,
        epochs: int,
        batch_size: int,
        learning_rate: float,
        seed: int,
        documents: int | None,
        half: str,
        verbosity: int,
        **options: Any,
    ) -> None:
        chosen = adapting.training_documents(
            settings.BASE_DIR / "data", keep=lambda record: half_of(record.source_id) == half
        )[:documents]
        self.stderr.write(f"Training on {len(chosen):,} documents of the {half} half…")

        def progress(step: int, steps: int, loss: float) -> None:
            if verbosity and (step == 1 or step % 10 == 0 or step == steps):
                self.stderr.write(f"step {step}/{steps}  loss {loss:.4f}")

        try:
            result = adapting.adapt(
                base or stock_model_path(),
                chosen,
                output,
                adapting.Recipe(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed),
                on_step=progress,
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.stderr.write(f"Saved to {output}.")
        self.stdout.write(json.dumps({"output": str(output), **vars(result)}))
