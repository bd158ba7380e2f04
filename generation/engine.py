"""A fast sampler for GPT-NeoX patent models on CPU.

transformers' `generate` grows its KV cache by concatenation (a copy of the
whole cache every token) and waits for the slowest sequence of a batch; on long
patents that is where the time goes. This engine runs the same model weights
with:

- a KV cache preallocated once for `slots` sequences of up to `max_length`
  tokens, written in place;
- continuous batching: a finished sequence leaves at once and the next prompt
  takes its slot. Active sequences are kept in slots 0..n-1 (a finished one is
  replaced by the last), so attention reads plain views of the cache, never
  gathered copies;
- stopping a sequence as soon as its last section is complete (the title line
  of a bottom-up patent), not only at the end token;
- transformers' own sampling rules, in transformers' order (repetition
  penalty, temperature, top-k, top-p), so the output distribution is the
  model's. Each sequence draws from its own random generator, so a sequence is
  reproducible from its seed whatever else shares the batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

import torch
from torch.nn import functional

from generation.codecs import TextCodec
from generation.kernels import attention_kernel
from generation.structure import Guide, SequenceState


@dataclass(frozen=True)
class DecodingParameters:
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 0
    repetition_penalty: float = 1.05
    max_new_tokens: int = 1024
    # Structure-aware decoding and early abort (generation/structure.py).
    structured: bool = True
    early_abort: bool = True

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True)
class Request:
    prompt: str
    seed: int


@dataclass(frozen=True)
class Completion:
    index: int  # position of the request in the input
    text: str  # prompt + continuation, special tokens removed
    new_tokens: int
    finished: bool  # ended by the model or by a complete last section, not by max_new_tokens
    aborted: str | None = None  # the gate a part of it already failed, when decoding stopped early
    tokens: tuple[int, ...] = ()  # the continuation's token ids, as drawn (a contributor uploads them)


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of the model whose Linear layers hold int8 weights (fbgemm, activations quantized per batch).

    On our CPUs fp32 matrix products of a few rows run far below the memory
    bandwidth, while fbgemm's int8 kernels reach it: 5-7x faster per layer.
    """
    import copy
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's eager quantization is deprecated in favour of torchao
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)


class NeoXNetwork:
    """GPT-NeoX (the kl3m models): pre-norm layers, rotary positions on part of each head."""

    def __init__(self, model: torch.nn.Module, max_length: int) -> None:
        config = model.config
        self.heads = config.num_attention_heads
        self.head_size = config.hidden_size // self.heads
        self.parallel_residual = config.use_parallel_residual
        neox = model.gpt_neox
        self.embedding = neox.embed_in.weight
        self.layers = list(neox.layers)
        self.final_norm = neox.final_layer_norm
        self.unembed = model.get_output_embeddings()
        rotary = int(self.head_size * config.rope_parameters.get("partial_rotary_factor", 1.0))
        base = config.rope_parameters["rope_theta"]
        inv_freq = 1.0 / (base ** (torch.arange(0, rotary, 2, dtype=torch.float32) / rotary))
        freqs = torch.outer(torch.arange(max_length, dtype=torch.float32), inv_freq)
        angles = torch.cat((freqs, freqs), dim=-1)
        self.rotary = rotary
        self.cos, self.sin = angles.cos(), angles.sin()

    def embed(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        self._cos, self._sin = self.cos[positions][:, None], self.sin[positions][:, None]  # [n, 1, t, rotary]
        return functional.embedding(tokens, self.embedding)

    def _rotate(self, x: torch.Tensor) -> torch.Tensor:
        """Rotary embedding on the first `rotary` dims of each head; x is [n, heads, t, head_size]."""
        rot, rest = x[..., : self.rotary], x[..., self.rotary :]
        half = self.rotary // 2
        rotated = torch.cat((-rot[..., half:], rot[..., :half]), dim=-1)
        return torch.cat((rot * self._cos + rotated * self._sin, rest), dim=-1)

    def attention_inputs(self, index: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n, t, _ = x.shape
        layer = self.layers[index]
        qkv = layer.attention.query_key_value(layer.input_layernorm(x))
        query, key, value = qkv.view(n, t, self.heads, 3 * self.head_size).transpose(1, 2).chunk(3, dim=-1)
        return self._rotate(query), self._rotate(key), value

    def layer_output(self, index: int, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        n, t, _ = x.shape
        layer = self.layers[index]
        attended = layer.attention.dense(context.transpose(1, 2).reshape(n, t, -1))
        if self.parallel_residual:
            return x + attended + layer.mlp(layer.post_attention_layernorm(x))
        x = x + attended
        return x + layer.mlp(layer.post_attention_layernorm(x))

    def logits(self, last: torch.Tensor) -> torch.Tensor:
        return self.unembed(self.final_norm(last))


class BertNetwork:
    """A BERT decoder (the MiniLM warm start): post-norm layers, learned absolute positions."""

    def __init__(self, model: torch.nn.Module, max_length: int) -> None:
        config = model.config
        self.heads = config.num_attention_heads
        self.head_size = config.hidden_size // self.heads
        self.embeddings = model.bert.embeddings
        self.layers = list(model.bert.encoder.layer)
        self.head = model.cls

    def embed(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        embeddings = self.embeddings
        x = (
            embeddings.word_embeddings(tokens)
            + embeddings.position_embeddings(positions)
            + embeddings.token_type_embeddings.weight[0]
        )
        return embeddings.LayerNorm(x)

    def attention_inputs(self, index: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n, t, _ = x.shape
        attention = self.layers[index].attention.self
        return tuple(
            projection(x).view(n, t, self.heads, self.head_size).transpose(1, 2)
            for projection in (attention.query, attention.key, attention.value)
        )

    def layer_output(self, index: int, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        n, t, _ = x.shape
        layer = self.layers[index]
        output = layer.attention.output
        x = output.LayerNorm(x + output.dense(context.transpose(1, 2).reshape(n, t, -1)))
        return layer.output.LayerNorm(x + layer.output.dense(layer.intermediate(x)))

    def logits(self, last: torch.Tensor) -> torch.Tensor:
        return self.head(last)


class PatentEngine:
    def __init__(
        self,
        model: torch.nn.Module,
        codec: TextCodec,
        *,
        slots: int = 16,
        max_length: int = 2048,
        int8: bool = False,
        fp16_cache: bool = True,
    ) -> None:
        # A model with learned positions can't go past the ones it has.
        max_length = min(max_length, getattr(model.config, "max_position_embeddings", max_length))
        if int8:
            model = quantize_int8(model)
        self.codec = codec
        self.slots = slots
        self.max_length = max_length
        network_type = BertNetwork if model.config.model_type == "bert" else NeoXNetwork
        self.network = network_type(model, max_length)
        self.heads, self.head_size = self.network.heads, self.network.head_size
        self.layers = len(self.network.layers)

        # An fp16 cache halves the bytes read per step, where long patents spend their time; it needs the
        # native kernel (torch's own half-precision attention is slower than fp32 on AVX2 CPUs).
        self.kernel = attention_kernel() if fp16_cache else None
        shape = (self.layers, slots, self.heads, max_length, self.head_size)
        dtype = torch.float16 if self.kernel else torch.float32
        self.keys = torch.zeros(shape, dtype=dtype)
        self.values = torch.zeros(shape, dtype=dtype)
        self.scale = self.head_size**-0.5
        self.eos = codec.eos_token_id
        self.has_newline = torch.tensor(["\n" in text for text in codec.token_texts], dtype=torch.bool)
        self._guides: dict[bool, Guide] = {}
        # Random or lightly trained weights produce float denormals, which slow CPU matmuls several-fold.
        torch.set_flush_denormal(True)

    def guide(self, early_abort: bool) -> Guide:
        if early_abort not in self._guides:
            self._guides[early_abort] = Guide(self.codec, early_abort=early_abort)
        return self._guides[early_abort]

    # --- the model ------------------------------------------------------------------

    def _forward(self, tokens: torch.Tensor, slot: slice, start: torch.Tensor) -> torch.Tensor:
        """Logits of the last position. tokens [n, t] for slots `slot`, the first at positions `start` [n]."""
        n, t = tokens.shape
        positions = start[:, None] + torch.arange(t)  # [n, t]
        end = int(start.max()) + t
        x = self.network.embed(tokens, positions)  # [n, t, hidden]
        mask = None
        if not self.kernel:
            # Key j is visible to the query at position p when j <= p (the cache beyond a
            # sequence's own length holds other sequences' leftovers: masked too).
            visible = torch.arange(end)[None, None, :] <= positions[:, :, None]  # [n, t, end]
            mask = torch.zeros(visible.shape).masked_fill_(~visible, float("-inf"))[:, None]  # [n, 1, t, end]
        rows = torch.arange(n)[:, None]
        for index in range(self.layers):
            query, key, value = self.network.attention_inputs(index, x)
            keys, values = self.keys[index, slot], self.values[index, slot]
            keys[rows, :, positions] = key.transpose(1, 2).to(keys.dtype)
            values[rows, :, positions] = value.transpose(1, 2).to(values.dtype)
            if self.kernel:
                context = self.kernel.attend(query, keys, values, positions, self.scale)
            else:
                # torch's fused attention reads the cache once (30% faster than matmul-softmax-matmul here).
                context = functional.scaled_dot_product_attention(
                    query, keys[:, :, :end], values[:, :, :end], attn_mask=mask
                )
            x = self.network.layer_output(index, x, context)
        return self.network.logits(x[:, -1])

    # --- sampling -------------------------------------------------------------------

    @staticmethod
    def _filter(logits: torch.Tensor, seen: torch.Tensor, parameters: DecodingParameters) -> torch.Tensor:
        """transformers' processors, in its order: repetition penalty, temperature, top-k, top-p."""
        if parameters.repetition_penalty != 1.0:
            penalised = torch.where(
                logits < 0, logits * parameters.repetition_penalty, logits / parameters.repetition_penalty
            )
            logits = torch.where(seen, penalised, logits)
        logits = logits / parameters.temperature
        if parameters.top_k > 0:
            threshold = torch.topk(logits, min(parameters.top_k, logits.shape[-1])).values[..., -1:]
            logits = logits.masked_fill(logits < threshold, float("-inf"))
        if parameters.top_p < 1.0:
            ordered, order = torch.sort(logits, descending=False)
            cumulative = ordered.softmax(dim=-1).cumsum(dim=-1)
            remove = cumulative <= (1 - parameters.top_p)
            remove[..., -1] = False  # always keep the most likely token
            logits = logits.masked_fill(remove.scatter(1, order, remove), float("-inf"))
        return logits

    # --- stopping -------------------------------------------------------------------

    @staticmethod
    def last_section_complete(text: str) -> bool:
        """True once a bottom-up patent's title line, its last section, has ended."""
        if "\n## Title\n" not in text or "\n## Claims\n" not in text.split("\n## Title\n")[0]:
            return False
        title = text.split("\n## Title\n", 1)[1]
        return "\n" in title.lstrip("\n") and bool(title.strip())

    # --- the loop -------------------------------------------------------------------

    def generate(
        self, requests: Iterable[Request], parameters: DecodingParameters, *, ignore_stops: bool = False
    ) -> Iterator[Completion]:
        """Completions in the order they finish. `ignore_stops` generates exactly max_new_tokens (benchmarks)."""
        pending = list(enumerate(requests))[::-1]
        prompt_ids = {index: self.codec.encode_prompt(request.prompt) for index, request in pending}
        vocabulary = self.codec.vocabulary_size
        limit = min(parameters.max_new_tokens, self.max_length - max(map(len, prompt_ids.values()), default=0))
        guide = self.guide(parameters.early_abort) if parameters.structured and not ignore_stops else None
        # Per-slot state. Slot s holds request owner[s].
        owner: list[int] = [0] * self.slots
        generators = [torch.Generator() for _ in range(self.slots)]
        generated: list[list[int]] = [[] for _ in range(self.slots)]
        states: list[SequenceState | None] = [None] * self.slots
        length = torch.zeros(self.slots, dtype=torch.long)
        seen = torch.zeros(self.slots, vocabulary, dtype=torch.bool)
        next_token = torch.zeros(self.slots, dtype=torch.long)
        active = 0

        def text_of(slot: int) -> str:
            ids = prompt_ids[owner[slot]] + [token for token in generated[slot] if token != self.eos]
            return self.codec.decode(ids)

        def draw(logits: torch.Tensor, window: slice) -> torch.Tensor:
            if guide:
                for row, state in enumerate(states[window]):
                    guide.mask(state, logits[row])
            tokens = self._draw(logits, seen[window], parameters, generators[window])
            if guide:
                for row, state in enumerate(states[window]):
                    tokens[row] = guide.advance(state, int(tokens[row]))
            return tokens

        def admit(slot: int) -> None:
            index, request = pending.pop()
            ids = prompt_ids[index]
            owner[slot], generated[slot] = index, []
            states[slot] = guide.start(request.prompt, ids, limit) if guide else None
            generators[slot].manual_seed(request.seed)
            seen[slot] = False
            seen[slot, ids] = True
            logits = self._forward(torch.tensor([ids]), slice(slot, slot + 1), torch.zeros(1, dtype=torch.long))
            length[slot] = len(ids)
            next_token[slot] = draw(logits, slice(slot, slot + 1))[0]

        def move(source: int, target: int) -> None:
            used = int(length[source])  # only the positions the sequence has written
            self.keys[:, target, :, :used] = self.keys[:, source, :, :used]
            self.values[:, target, :, :used] = self.values[:, source, :, :used]
            for state in (length, seen, next_token):
                state[target] = state[source]
            owner[target], generated[target], states[target] = owner[source], generated[source], states[source]
            generators[target], generators[source] = generators[source], generators[target]

        def finished(slot: int, token: int) -> bool:
            if ignore_stops:
                return False
            if guide:
                return token == self.eos
            return token == self.eos or bool(self.has_newline[token] and self.last_section_complete(text_of(slot)))

        with torch.inference_mode():
            while active < self.slots and pending:
                admit(active)
                active += 1
            while active:
                # Record the drawn tokens; finish sequences; refill or compact their slots.
                slot = 0
                while slot < active:
                    token = int(next_token[slot])
                    generated[slot].append(token)
                    seen[slot, token] = True
                    done = finished(slot, token)
                    state = states[slot]
                    aborted = state.aborted if state else None
                    if not done and not aborted and len(generated[slot]) < limit:
                        slot += 1
                        continue
                    yield Completion(
                        index=owner[slot],
                        text=text_of(slot),
                        new_tokens=len(generated[slot]),
                        finished=done,
                        aborted=str(aborted) if aborted else None,
                        tokens=tuple(generated[slot]),
                    )
                    if pending:
                        # The newcomer's first token is drawn: record it in this same pass.
                        admit(slot)
                    else:
                        active -= 1
                        if slot != active:
                            move(active, slot)
                if not active:
                    break
                window = slice(0, active)
                logits = self._forward(next_token[window, None], window, length[window])
                length[window] += 1
                next_token[window] = draw(logits, window)

    def _draw(
        self,
        logits: torch.Tensor,
        seen: torch.Tensor,
        parameters: DecodingParameters,
        generators: list[torch.Generator],
    ) -> torch.Tensor:
        probabilities = torch.softmax(self._filter(logits.float(), seen, parameters), dim=-1)
        # Inverse transform sampling: one uniform number per sequence, from that sequence's own
        # generator; the first token whose cumulative probability exceeds it is a draw from p.
        cumulative = probabilities.cumsum(dim=-1)
        uniform = torch.cat([torch.rand(1, generator=g) for g in generators])[:, None] * cumulative[:, -1:]
        return torch.searchsorted(cumulative, uniform, right=True)[:, 0].clamp_(max=probabilities.shape[-1] - 1)
