# Two entry points for a fresh clone: `make demo` and `make test`. Each creates .venv and installs what is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench bench-cosim finn-env clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Verilator's FST waveform writer (`hbnn sim --waves`) compiles against lz4: Debian's liblz4-dev, installed here
# when its header is missing (CI and the developers' machines run as root; elsewhere the message says what to do).
LZ4_HEADER := /usr/include/lz4.h

$(LZ4_HEADER):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get install -y -qq liblz4-dev >/dev/null || { apt-get update -qq && apt-get install -y -qq liblz4-dev >/dev/null; }; \
	else \
		echo "hbnn needs lz4.h for FST waveforms: sudo apt-get install liblz4-dev"; exit 1; \
	fi

# torch first, pinned: it is the CPU build available locally; an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python $(LZ4_HEADER)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/hbnn demo

# One worker per core; a test file stays on one worker, so its module fixtures (trained models, Verilator builds)
# are built once.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist loadfile

bench: $(STAMP)
	$(BIN)/python bench/run.py

bench-cosim: $(STAMP)
	$(BIN)/python bench/cosim_speed.py

# FINN (finn-plus from PyPI) for bench/finn_compare.py, in an environment of its own: it pins brevitas 0.13.0, onnx
# and protobuf versions that hbnn's own environment must not take. torch stays the CPU build here too
# (bench/finn-requirements.txt says how).
FINN_VENV := .finn-venv
FINN_STAMP := $(FINN_VENV)/.installed

$(FINN_STAMP):
	$(PYTHON) -m venv $(FINN_VENV)
	$(FINN_VENV)/bin/pip install --quiet --upgrade pip
	$(FINN_VENV)/bin/pip install --quiet torch==2.13.0
	$(FINN_VENV)/bin/pip install --quiet -r bench/finn-requirements.txt
	$(FINN_VENV)/bin/pip install --quiet --no-deps finn-plus==1.6.1 brevitas==0.13.0 unfoldNd==0.2.3
	touch $(FINN_STAMP)

finn-env: $(FINN_STAMP)

clean:
	rm -rf build runs sim_build
