from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from generation.training import TrainingConfig, train_generator
from search.importing import SAMPLE_CORPUS


class Command(BaseCommand):
    help = "Train the small offline generator on the bundled real patents (both formats of the kl3m model card)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", type=Path, default=None, help="Default: VAR_DIR/models/kl3m-mini")
        parser.add_argument("--minutes", type=float, default=10.0, help="Wall-clock budget (default 10).")
        parser.add_argument("--steps", type=int, default=None, help="Train exactly this many steps instead.")
        parser.add_argument("--hidden-size", type=int, default=256)
        parser.add_argument("--layers", type=int, default=4)
        parser.add_argument("--heads", type=int, default=4)
        parser.add_argument("--block-size", type=int, default=256)
        parser.add_argument("--batch-size", type=int, default=8)
        parser.add_argument("--learning-rate", type=float, default=1e-3)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--corpus", type=Path, default=SAMPLE_CORPUS, help="JSONL of real patents.")

    def handle(self, *args: Any, **options: Any) -> None:
        output = options["output"] or Path(settings.VAR_DIR) / "models" / "kl3m-mini"
        config = TrainingConfig(
            hidden_size=options["hidden_size"],
            layers=options["layers"],
            heads=options["heads"],
            block_size=options["block_size"],
            batch_size=options["batch_size"],
            minutes=options["minutes"],
            max_steps=options["steps"],
            learning_rate=options["learning_rate"],
            seed=options["seed"],
        )
        with tqdm(total=config.max_steps, unit="step", disable=options["verbosity"] == 0, file=self.stderr._out) as bar:

            def on_step(step: int, loss: float) -> None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}")

            result = train_generator(output, config, corpus=options["corpus"], on_step=on_step)
        self.stdout.write(
            f"Saved the generator to {output}: {result.steps} steps, {result.tokens_seen} tokens, "
            f"loss {result.first_loss:.3f} -> {result.last_loss:.3f} in {result.seconds:.0f} s."
        )
