"""Greedy generation from prompt embeddings (video tokens already spliced in).

:func:`greedy_generate` calls Hugging Face ``generate`` (``do_sample=False``, one beam), with
the key/value cache (``use_cache=True``: each step feeds only the newest token) or without it
(every step recomputes the whole sequence).  Greedy decoding must give the same tokens
either way; :func:`greedy_generate_uncached` is a plain loop that states what greedy decoding
is (arg-max of the full forward pass, append, repeat) without any of ``generate``'s
machinery, and the tests compare all three.

:func:`time_generation` measures time to first token and decoding speed (used by the ``gpu``
check of Stage 4 models; it runs on any device).
"""

from __future__ import annotations

import time
from typing import Callable

import torch
from torch import nn

__all__ = ["greedy_generate", "greedy_generate_uncached", "time_generation"]


@torch.no_grad()
def greedy_generate(llm: nn.Module, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor | None,
                    max_new_tokens: int, stop_token_ids: list[int], pad_token_id: int,
                    use_cache: bool = True, min_new_tokens: int = 0) -> torch.Tensor:
    """Greedy decoding with ``llm.generate`` from prompt embeddings.

    Args:
        llm: A Hugging Face causal LM (``LlamaForCausalLM``).
        inputs_embeds: ``(B, L, D)`` prompt embeddings; with padding, left-padded.
        attention_mask: ``(B, L)`` 1 on real positions (``None``: all real).
        max_new_tokens: Most tokens generated.
        stop_token_ids: Tokens that end a sequence (the template's stop and ``</s>``).
        pad_token_id: Written after a sequence has stopped.
        use_cache: Keep the key/value cache between steps.
        min_new_tokens: Suppress the stop tokens before this many tokens (for timing).

    Returns:
        ``(B, n)`` long, the generated tokens only (``n <= max_new_tokens``); a row that
        stopped early is padded with ``pad_token_id`` after its stop token.
    """
    if attention_mask is None:
        attention_mask = torch.ones(inputs_embeds.shape[:2], dtype=torch.long, device=inputs_embeds.device)
    return llm.generate(inputs_embeds=inputs_embeds, attention_mask=attention_mask, max_new_tokens=max_new_tokens,
                        min_new_tokens=min_new_tokens, do_sample=False, num_beams=1, use_cache=use_cache,
                        eos_token_id=list(stop_token_ids), pad_token_id=pad_token_id, temperature=None, top_p=None,
                        top_k=None)


@torch.no_grad()
def greedy_generate_uncached(llm: nn.Module, inputs_embeds: torch.Tensor, max_new_tokens: int,
                             stop_token_ids: list[int], pad_token_id: int) -> torch.Tensor:
    """Greedy decoding as its definition: full forward pass, arg-max of the last position, append.

    No cache and no padding support (every row is a full-length prompt).  Same arguments and
    output as :func:`greedy_generate`.
    """
    embed = llm.get_input_embeddings()
    x = inputs_embeds
    B = x.shape[0]
    out = torch.full((B, max_new_tokens), pad_token_id, dtype=torch.long, device=x.device)
    done = torch.zeros(B, dtype=torch.bool, device=x.device)
    stops = torch.tensor(list(stop_token_ids), device=x.device)
    n = 0
    for step in range(max_new_tokens):
        logits = llm(inputs_embeds=x, use_cache=False).logits[:, -1]
        tok = logits.argmax(dim=-1)
        tok = torch.where(done, torch.full_like(tok, pad_token_id), tok)
        out[:, step] = tok
        n = step + 1
        done |= torch.isin(tok, stops)
        if bool(done.all()):
            break
        x = torch.cat([x, embed(tok)[:, None]], dim=1)
    return out[:, :n]


def time_generation(generate: Callable[[int, int], torch.Tensor], new_tokens: int, repeats: int = 3,
                    synchronize: Callable[[], None] = lambda: None) -> dict:
    """Time to first token and decoding speed of a generation function.

    Args:
        generate: ``generate(max_new_tokens, min_new_tokens) -> (B, n) tokens``; it includes
            everything a user waits for (video encoding, prefill, decoding).
        new_tokens: Tokens generated in the long run (> 1).
        repeats: Timed runs of each length after one untimed warm-up run; medians are reported.
        synchronize: Called before reading the clock (``torch.cuda.synchronize`` on a GPU).

    Returns:
        ``time_to_first_token_s`` (median time of a 1-token run), ``total_s`` (median time of a
        ``new_tokens`` run), ``decode_tokens_per_s`` (``(new_tokens - 1) / (total - first)``
        per sequence, times the batch size), ``new_tokens`` and ``batch_size``.
    """
    def run(n: int) -> tuple[float, int]:
        synchronize()
        t0 = time.perf_counter()
        toks = generate(n, n)
        synchronize()
        return time.perf_counter() - t0, toks.shape[0]

    run(1), run(new_tokens)
    first = sorted(run(1)[0] for _ in range(repeats))[repeats // 2]
    totals = [run(new_tokens) for _ in range(repeats)]
    total = sorted(t for t, _ in totals)[repeats // 2]
    batch = totals[0][1]
    return {"time_to_first_token_s": first, "total_s": total, "new_tokens": new_tokens, "batch_size": batch,
            "decode_tokens_per_s": batch * (new_tokens - 1) / max(total - first, 1e-9)}
