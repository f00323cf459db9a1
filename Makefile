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

# torch is not needed yet; when it is, pin the CPU build first (see DESIGN) before the project.
$(STAMP): pyproject.toml
	@bash packaging/system-deps.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
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
