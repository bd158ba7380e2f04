"""Generate for All the Patents on your own computer: pull work over HTTPS, sample, upload.

    python -m allpatents.contribute --server https://allthepatents.example --token apc_...

The server hands out work units (a batch of prompts, per-output seeds, decoding parameters and
the exact model); this loads the model once, samples with our engine on the CPU (or with
PyTorch on a CUDA GPU, `--device cuda`) and uploads the texts. The server re-runs every check
itself and publishes what passes. Needs no database or broker: only the server's URL and a
token. Ctrl-C gives the current unit back; a server that is away is retried with backoff.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from generation.engine import DecodingParameters, PatentEngine, Request
from generation.llm import BUNDLED_GENERATOR, Generator, load_generator

USER_AGENT = "allpatents-contribute/1"
MAX_BACKOFF = 60.0  # seconds between tries while the server is away


class Stop(Exception):
    """The person asked to stop (Ctrl-C, SIGTERM)."""


class Refused(Exception):
    """The server refused this token for good (revoked, suspended): no point in retrying."""


@dataclass
class Answer:
    status: int
    body: Any
    retry_after: float | None


class Server:
    def __init__(self, base_url: str, token: str, *, timeout: float = 120.0) -> None:
        self.base_url, self.token, self.timeout = base_url.rstrip("/"), token, timeout

    def post(self, path: str, payload: object | None = None) -> Answer:
        """POST, retrying with backoff while the server can't be reached or answers 5xx/429."""
        delay = 1.0
        while True:
            try:
                return self._post_once(path, payload)
            except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
                reason = getattr(error, "reason", error)
                say(f"server unreachable ({reason}); retrying in {delay:.0f} s")
                pause(delay)
            except _Busy as busy:
                say(f"server busy ({busy.status}); retrying in {busy.wait:.0f} s")
                pause(busy.wait)
            delay = min(delay * 2, MAX_BACKOFF)

    def _post_once(self, path: str, payload: object | None) -> Answer:
        request = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(payload or {}).encode(),
            method="POST",
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
                return Answer(response.status, json.loads(raw) if raw else None, _retry_after(response.headers))
        except urllib.error.HTTPError as error:
            retry_after = _retry_after(error.headers)
            body = _json_or_text(error.read())
            if error.code in (429, 500, 502, 503, 504):
                raise _Busy(error.code, retry_after or 5.0) from error
            return Answer(error.code, body, retry_after)


class _Busy(Exception):
    def __init__(self, status: int, wait: float) -> None:
        self.status, self.wait = status, wait


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers else None
    return float(value) if value and value.isdigit() else None


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return {"message": raw.decode(errors="replace")[:200]}


def say(message: str) -> None:
    print(time.strftime("%H:%M:%S"), message, flush=True)


# Set by Ctrl-C (or SIGTERM). The handler also raises Stop at once, but Python drops an exception raised
# while an import holds its lock, so the loop checks this too, between steps and while it waits.
STOPPING = threading.Event()


def pause(seconds: float) -> None:
    if STOPPING.wait(seconds):
        raise Stop


def stop_if_asked() -> None:
    if STOPPING.is_set():
        raise Stop


# --- the model -----------------------------------------------------------------------


def resolve_model(reference: dict[str, Any], local: Path | None) -> str:
    """Where to load the unit's model from: the bundled copy, a local directory, or the hub."""
    if reference["bundled"]:
        return str(BUNDLED_GENERATOR)
    if local is not None:
        return str(local)
    return str(reference["name"])  # a hub id (downloaded once into transformers' cache) or a directory here


def load_checked(reference: dict[str, Any], local: Path | None) -> Generator:
    generator = load_generator(resolve_model(reference, local))
    if generator.revision != reference["revision"]:
        raise Refused(
            f"the model here is {generator.name} at {generator.revision or 'an unknown revision'}, but the server "
            f"wants {reference['name']} at {reference['revision']}; the server would reject every output"
        )
    return generator


class Sampler:
    """One engine per model, kept across units (its KV cache is allocated once)."""

    def __init__(self, device: str, slots: int, int8: bool) -> None:
        self.device, self.slots, self.int8 = device, slots, int8
        self._engines: dict[tuple[str, int], PatentEngine] = {}

    def sample(self, generator: Generator, unit: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
        parameters = DecodingParameters(**unit["parameters"])
        requests = [Request(output["prompt"], seed=output["seed"]) for output in unit["outputs"]]
        if self.device == "cuda":
            return self._sample_cuda(generator, unit, requests, parameters)
        longest = max(len(generator.codec.encode_prompt(r.prompt)) for r in requests)
        key = (generator.name, longest + parameters.max_new_tokens)
        if key not in self._engines:
            self._engines.clear()
            self._engines[key] = PatentEngine(
                generator.model, generator.codec, slots=self.slots, max_length=key[1], int8=self.int8
            )
        completions = sorted(self._engines[key].generate(requests, parameters), key=lambda c: c.index)
        outputs = [
            {
                "position": output["position"],
                "text": completion.text,
                "new_tokens": int(completion.new_tokens),
                "finished": bool(completion.finished),
                "aborted": completion.aborted,
                "tokens": list(completion.tokens),
            }
            for output, completion in zip(unit["outputs"], completions, strict=True)
        ]
        return outputs, sum(output["new_tokens"] for output in outputs)

    @staticmethod
    def _sample_cuda(
        generator: Generator, unit: dict[str, Any], requests: list[Request], parameters: DecodingParameters
    ) -> tuple[list[dict[str, Any]], int]:
        """The model's own `generate` on the GPU, one output at a time from its own seed (not run on our machines)."""
        model = generator.model.to("cuda")
        codec = generator.codec
        outputs = []
        for output, request in zip(unit["outputs"], requests, strict=True):
            prompt = torch.tensor([codec.encode_prompt(request.prompt)], device="cuda")
            torch.manual_seed(request.seed)
            with torch.inference_mode():
                ids = model.generate(
                    prompt,
                    do_sample=True,
                    temperature=parameters.temperature,
                    top_p=parameters.top_p,
                    top_k=parameters.top_k,
                    repetition_penalty=parameters.repetition_penalty,
                    max_new_tokens=parameters.max_new_tokens,
                    eos_token_id=codec.eos_token_id,
                    pad_token_id=codec.eos_token_id,
                    cache_implementation="static",
                )[0].tolist()
            new = ids[prompt.shape[1] :]
            outputs.append(
                {
                    "position": output["position"],
                    "text": codec.decode(ids),
                    "new_tokens": len(new),
                    "finished": codec.eos_token_id in new,
                    "aborted": None,
                    "tokens": new,
                }
            )
        return outputs, sum(output["new_tokens"] for output in outputs)


# --- the loop ------------------------------------------------------------------------


def contribute(server: Server, sampler: Sampler, *, local_model: Path | None, units: int) -> int:
    done = published = 0
    idle = 1.0
    while not units or done < units:
        stop_if_asked()
        answer = server.post("/api/work")
        if answer.status == 204:
            wait = min(answer.retry_after or idle, MAX_BACKOFF)
            say(f"no work right now; asking again in {wait:.0f} s")
            pause(wait)
            idle = min(idle * 2, MAX_BACKOFF)
            continue
        if answer.status != 200:
            raise Refused(f"{answer.status}: {answer.body.get('message', answer.body)}")
        idle = 1.0
        unit = answer.body
        say(f"leased unit {unit['id']} (run {unit['run']}, batch {unit['batch']}, {len(unit['outputs'])} outputs)")
        try:
            generator = load_checked(unit["model"], local_model)
            started_cpu, started = time.process_time(), time.monotonic()
            outputs, tokens = sampler.sample(generator, unit)
            cpu, wall = time.process_time() - started_cpu, time.monotonic() - started
            stop_if_asked()
        except BaseException:
            # Stopped or failed mid-unit: give it back so someone else gets it now, not at expiry.
            server.post(f"/api/work/{unit['id']}/release")
            say(f"gave unit {unit['id']} back")
            raise
        weights = "int8" if sampler.int8 and sampler.device == "cpu" else "fp32"
        answer = server.post(
            f"/api/work/{unit['id']}/results",
            {"outputs": outputs, "cpu_seconds": cpu, "wall_seconds": wall, "weights": weights},
        )
        done += 1
        if answer.status != 200:
            say(f"unit {unit['id']} not recorded: {answer.body.get('message')}")
            continue
        outcome = answer.body
        published += len(outcome["published"])
        say(
            f"unit {unit['id']}: {outcome['recorded']} outputs, {tokens} tokens in {wall:.1f} s "
            f"({tokens / wall if wall else 0:.0f} tokens/s); published {len(outcome['published'])}; "
            f"so far {done} units, {published} published"
        )
    return published


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m allpatents.contribute", description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True, help="The site's base URL, e.g. https://allthepatents.example")
    parser.add_argument("--token", required=True, help="Your contributor token (from the site's staff).")
    parser.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], default="auto", help="auto: cuda when a GPU is present."
    )
    parser.add_argument("--model", type=Path, help="A local copy of the unit's model (otherwise bundled or hub).")
    parser.add_argument("--units", type=int, default=0, help="Stop after this many units (0: until stopped).")
    parser.add_argument("--slots", type=int, default=16, help="Sequences sampled at once on the CPU.")
    parser.add_argument("--fp32", action="store_true", help="fp32 weights on the CPU (default int8: 5-7x faster).")
    options = parser.parse_args(argv)
    device = options.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: PyTorch sees no CUDA GPU here")

    def stop(signum: int, frame: object) -> None:
        if not STOPPING.is_set():  # a second Ctrl-C doesn't interrupt giving the unit back
            STOPPING.set()
            raise Stop

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    say(f"contributing to {options.server} on {device}")
    try:
        contribute(
            Server(options.server, options.token),
            Sampler(device, options.slots, int8=not options.fp32),
            local_model=options.model,
            units=options.units,
        )
    except Stop:
        say("stopped")
    except Refused as refusal:
        say(f"refused: {refusal}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
