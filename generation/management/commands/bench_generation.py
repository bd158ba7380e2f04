"""Generation speed: the model card's pipeline call against our engine, same model, same process."""

import json
import time
from typing import Any

import torch
from django.core.management.base import BaseCommand, CommandParser

from generation.codecs import TokenizerCodec
from generation.drift import measure_drift
from generation.engine import PatentEngine, Request
from generation.llm import TOP_DOWN_PROMPT, DecodingParameters
from generation.training import KL3M_TOKENIZER


def kl3m_shaped_model():
    """alea-institute/kl3m-002-170m-patent's architecture with random weights (speed does not depend on them)."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    config = GPTNeoXConfig(
        vocab_size=32768, hidden_size=1024, num_hidden_layers=16, num_attention_heads=16, intermediate_size=1024,
        rotary_pct=0.25, max_position_embeddings=4096, tie_word_embeddings=False, use_parallel_residual=True,
        attention_bias=True, hidden_act="gelu", bos_token_id=0, eos_token_id=1, pad_token_id=2,
    )  # fmt: skip
    torch.manual_seed(0)
    return GPTNeoXForCausalLM(config).eval()


class Command(BaseCommand):
    help = "Benchmark: tokens/s of the model card's pipeline call and of our engine on a kl3m-shaped model."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--new-tokens", type=int, default=1024)
        parser.add_argument("--sequences", type=int, default=32, help="Sequences the engine generates.")
        parser.add_argument("--slots", type=int, default=16, help="Sequences the engine runs at once.")
        parser.add_argument("--skip-baseline", action="store_true")
        parser.add_argument("--fp32", action="store_true", help="Run the engine with fp32 weights instead of int8.")
        parser.add_argument(
            "--drift-model",
            default=None,
            help="A trained model (e.g. var/models/kl3m-mini): report its int8 log-likelihood drift on real patents.",
        )

    def handle(
        self,
        *args: Any,
        new_tokens: int,
        sequences: int,
        slots: int,
        skip_baseline: bool,
        fp32: bool,
        drift_model: str | None,
        **o: Any,
    ) -> None:
        from transformers import AutoTokenizer, pipeline

        torch.set_flush_denormal(True)
        tokenizer = AutoTokenizer.from_pretrained(KL3M_TOKENIZER)
        model = kl3m_shaped_model()
        result: dict[str, float | int | None] = {"new_tokens": new_tokens, "threads": torch.get_num_threads()}

        baseline_tok_s = None
        if not skip_baseline:
            # The model card's own call; min_new_tokens so that both sides make the same number of tokens.
            generator = pipeline("text-generation", model=model, tokenizer=tokenizer, device="cpu")
            started = time.perf_counter()
            outputs = generator(
                TOP_DOWN_PROMPT, do_sample=True, temperature=0.5, num_return_sequences=3,
                max_new_tokens=new_tokens, min_new_tokens=new_tokens, pad_token_id=tokenizer.pad_token_id,
            )  # fmt: skip
            seconds = time.perf_counter() - started
            baseline_tok_s = 3 * new_tokens / seconds
            self.stderr.write(f"baseline: {len(outputs)} x {new_tokens} tokens in {seconds:.1f} s")
        result["baseline_tok_s"] = baseline_tok_s

        engine = PatentEngine(model, TokenizerCodec(tokenizer), slots=slots, max_length=new_tokens + 16, int8=not fp32)
        parameters = DecodingParameters(
            temperature=0.5, top_p=1.0, top_k=0, repetition_penalty=1.0, max_new_tokens=new_tokens
        )
        requests = [Request(TOP_DOWN_PROMPT, seed=seed) for seed in range(sequences)]
        started = time.perf_counter()
        produced = sum(c.new_tokens for c in engine.generate(requests, parameters, ignore_stops=True))
        seconds = time.perf_counter() - started
        engine_tok_s = produced / seconds
        self.stderr.write(f"engine: {produced} tokens in {seconds:.1f} s ({slots} slots)")

        result.update(
            engine_tok_s=round(engine_tok_s, 1),
            baseline_tok_s=round(baseline_tok_s, 1) if baseline_tok_s else None,
            ratio=round(engine_tok_s / baseline_tok_s, 2) if baseline_tok_s else None,
            sequences=sequences,
            slots=slots,
            weights="fp32" if fp32 else "int8",
            # A patent of new_tokens tokens, one after another at the engine's rate.
            patents_per_hour=round(engine_tok_s * 3600 / new_tokens, 1),
        )
        if drift_model:
            from dataclasses import asdict

            from transformers import AutoModelForCausalLM

            trained = AutoModelForCausalLM.from_pretrained(drift_model).eval()
            drift = measure_drift(trained, AutoTokenizer.from_pretrained(drift_model))
            result["int8_drift"] = {key: round(value, 4) for key, value in asdict(drift).items()}
        self.stdout.write(json.dumps(result))
