"""What the embedded judge's subprocess runs: llama-cpp-python's OpenAI-compatible server, with ggml's "extra
buffer types" turned off.

Why: on a CPU that advertises AMX, ggml's default places the weights in its AMX extra buffer type, and
``ggml_backend_amx_mul_mat`` faults (SIGSEGV on the first completion) on some AMX VMs (llama.cpp issue 20824).
The extra buffer types only repack weights for speed. Turning them off at run time protects every way of
installing llama-cpp-python (native build, portable build, a wheel built elsewhere) on AMX and non-AMX CPUs
alike, which build flags alone cannot promise a user who runs a plain ``pip install``. Set
``LIMA_JUDGE_EXTRA_BUFFERS=1`` to keep them (faster on CPUs where they work).

    python -m lima.core.judge_server_main --model M.gguf --port 8000 ...   # the llama_cpp.server flags
"""

from __future__ import annotations

import os
import sys


def disable_extra_buffer_types() -> bool:
    """Make every model llama-cpp-python loads in this process skip ggml's extra buffer types.

    ``llama_cpp.Llama`` starts from ``llama_model_default_params()``, looked up on the module at call time,
    so wrapping that function reaches the server's model too. Returns False when this llama-cpp-python has
    no such switch (older than 0.3.16).
    """
    import llama_cpp.llama_cpp as bindings

    original = bindings.llama_model_default_params
    if not any(name == "use_extra_bufts" for name, *_ in original()._fields_):
        return False
    if getattr(original, "_lima_no_extra_bufts", False):
        return True

    def without_extra_buffer_types():  # type: ignore[no-untyped-def]
        params = original()
        params.use_extra_bufts = False
        return params

    without_extra_buffer_types._lima_no_extra_bufts = True  # type: ignore[attr-defined]
    bindings.llama_model_default_params = without_extra_buffer_types
    return True


def main() -> None:
    from lima.core.signals import watch_parent

    watch_parent()  # exit when the lima process that started us is gone, even if it was SIGKILLed
    if os.environ.get("LIMA_JUDGE_EXTRA_BUFFERS") != "1" and not disable_extra_buffer_types():
        print(
            "lima: this llama-cpp-python cannot turn off ggml's extra buffer types; on AMX CPUs it may crash "
            "(pip install 'llama-cpp-python[server]>=0.3.16')",
            file=sys.stderr,
        )
    from llama_cpp.server.__main__ import main as serve

    serve()


if __name__ == "__main__":
    main()
