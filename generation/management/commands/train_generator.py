from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from generation.training import TRAINING_CORPORA, TrainingConfig, train_generator

DEFAULTS = TrainingConfig()


class Command(BaseCommand):
    help = "Train the small offline generator on the bundled real patents (both formats of the kl3m model card)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", type=Path, default=None, help="Default: VAR_DIR/models/allpatents-minilm")
        parser.add_argument(
            "--minutes", type=float, default=DEFAULTS.minutes, help=f"Wall-clock budget (default {DEFAULTS.minutes})."
        )
        parser.add_argument("--steps", type=int, default=None, help="Train exactly this many steps instead.")
        parser.add_argument("--hidden-size", type=int, default=DEFAULTS.hidden_size)
        parser.add_argument("--layers", type=int, default=DEFAULTS.layers)
        parser.add_argument("--heads", type=int, default=DEFAULTS.heads)
        parser.add_argument("--block-size", type=int, default=DEFAULTS.block_size)
        parser.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
        parser.add_argument("--learning-rate", type=float, default=DEFAULTS.learning_rate)
        parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
        parser.add_argument(
            "--evaluate-every", type=int, default=DEFAULTS.evaluate_every, help="Steps between held-out evaluations."
        )
        parser.add_argument(
            "--bf16", action="store_true", help="bf16 autocast: faster only on CPUs with native bf16 (not AVX2-only)."
        )
        start = parser.add_mutually_exclusive_group()
        start.add_argument(
            "--warm-start",
            default=DEFAULTS.warm_start,
            help='The BERT checkpoint to start from: "minilm" (the bundled embedding model, the default) or a '
            "directory.",
        )
        start.add_argument(
            "--from-scratch",
            dest="warm_start",
            action="store_const",
            const=None,
            help="A GPT-NeoX of --hidden-size, --layers and --heads with the kl3m tokenizer, from random weights.",
        )
        parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice).")
        parser.add_argument(
            "--corpus", type=Path, nargs="+", default=list(TRAINING_CORPORA), help="JSONL files of real patents."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        output = options["output"] or Path(settings.VAR_DIR) / "models" / "allpatents-minilm"
        if options["threads"]:
            torch.set_num_threads(options["threads"])
        names = {field.name for field in fields(TrainingConfig)}
        config = TrainingConfig(
            **{name: options[name] for name in names - {"bf16"} if name in options},
            max_steps=options["steps"],
            bf16=options["bf16"],
        )
        with tqdm(total=config.max_steps, unit="step", disable=options["verbosity"] == 0, file=self.stderr._out) as bar:

            def on_step(step: int, loss: float) -> None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}")

            def on_evaluation(step: int, loss: float) -> None:
                bar.write(f"step {step}: held-out loss {loss:.3f}")

            result = train_generator(
                output, config, corpora=options["corpus"], on_step=on_step, on_evaluation=on_evaluation
            )
        self.stdout.write(
            f"Saved the generator to {output}: {result.steps} steps, {result.tokens_seen} tokens, "
            f"loss {result.first_loss:.3f} -> {result.last_loss:.3f}, held-out {result.held_out_loss:.3f} "
            f"in {result.seconds:.0f} s."
        )
