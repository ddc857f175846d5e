# The two commands a user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Install torch first (pinned CPU default unless one is already importable), then the project
# with a constraints file holding the installed torch so no dependency can pull a CUDA build.
$(STAMP): pyproject.toml $(BIN)/python
	@$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install "$(TORCH)"
	@$(BIN)/python -c "import torch; print('torch==' + torch.__version__)" > $(VENV)/constraints.txt
	$(BIN)/pip install -c $(VENV)/constraints.txt -e ".[dev,eval,app,singing,cluster]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ns2 demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean-venv:
	rm -rf $(VENV)
