"""The decoding options that `generate` and `bench_hit_rate` share, so a run and the benchmark are asked
for in the same terms."""

from typing import Any

from django.core.management.base import CommandParser

from generation.engine import DecodingParameters

DEFAULTS = DecodingParameters()


def add_decoding_arguments(parser: CommandParser) -> None:
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


def decoding_parameters(options: dict[str, Any]) -> DecodingParameters:
    return DecodingParameters(
        temperature=options["temperature"],
        top_p=options["top_p"],
        top_k=options["top_k"],
        repetition_penalty=options["repetition_penalty"],
        max_new_tokens=options["max_new_tokens"],
        structured=not options["unstructured"],
        early_abort=not options["no_early_abort"],
    )
