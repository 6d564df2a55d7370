# Two commands do all the setup on a fresh machine:
#   make site   -> virtualenv + papers-kb, then validate data/, render and mkdocs build --strict into site/
#   make test   -> virtualenv + papers-kb + videozoo (torch from the local wheels) + test tools, then pytest
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: site test serve verify clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.site-deps: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.test-deps: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[zoo,test,reference,llm]'
	touch $@ $(VENV)/.site-deps

site: $(VENV)/.site-deps
	$(BIN)/papers-kb build

test: $(VENV)/.test-deps
	$(BIN)/python -m pytest

serve: $(VENV)/.site-deps
	$(BIN)/papers-kb serve

verify: $(VENV)/.test-deps
	$(BIN)/python -m videozoo.verify --out data/reproduction/

clean:
	rm -rf site site_src/generated .pytest_cache
