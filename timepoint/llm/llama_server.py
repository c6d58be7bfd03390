"""`python -m timepoint.llm.llama_server ARGS`: llama_cpp.server (an OpenAI-compatible server for GGUF
models, used as a real endpoint in tests and for local serving), with the same loading fix as the
embedded provider, so it runs on machines where llama.cpp's AMX kernels crash."""

from __future__ import annotations

import runpy

from .providers.local import without_extra_buffers

if __name__ == "__main__":
    without_extra_buffers()
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
