# The two commands: `make demo` and `make test`. Both create .venv and install into it.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# A machine that keeps a local CPU torch wheel (this project's build machines) installs that;
# everyone else gets the normal torch build for their platform (CUDA on a GPU box).
TORCH_SPEC ?= $(shell ls /opt/wheels/torch-2.13.0+cpu-*.whl >/dev/null 2>&1 && echo torch==2.13.0 || echo torch)
# anchors: test-only, the benchmarks' own code (alpaca-eval) for the equality tests, so `make test` runs them
EXTRAS ?= embedded,scale,dev,qlora,anchors
# pip compiles llama.cpp (the embedded judge server) from source. On x86 with AVX2 we ask for a portable AVX2
# build: it compiles in about half the time of ggml's native build and leaves out the AMX kernels that fault on
# some AMX VMs. The server also turns ggml's extra buffer types off at run time (lima/core/judge_server_main.py),
# which is what protects a plain `pip install`. Set CMAKE_ARGS yourself to override.
LLAMA_CMAKE_ARGS ?= $(shell grep -qw avx2 /proc/cpuinfo 2>/dev/null && echo "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON")

.PHONY: demo test install lint clean

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q "$(TORCH_SPEC)"
	CMAKE_ARGS="$${CMAKE_ARGS:-$(LLAMA_CMAKE_ARGS)}" $(PIP) install -q -e ".[$(EXTRAS)]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/lima run configs/experiments/demo.yaml --out runs/demo

test: install
	$(VENV)/bin/ruff check lima tests bench
	$(PY) -m pytest -q -p no:cacheprovider

lint: install
	$(VENV)/bin/ruff check lima tests bench
	$(VENV)/bin/ruff format --check lima tests bench

clean:
	rm -rf $(VENV) runs
