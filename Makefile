# The two commands a user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
FLITE  := $(VENV)/opt/flite

.PHONY: demo test install flite clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Install torch first (pinned CPU default unless one is already importable), then the project
# with a constraints file holding the installed torch so no dependency can pull a CUDA build.
$(STAMP): pyproject.toml $(BIN)/python
	@$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install "$(TORCH)"
	@$(BIN)/python -c "import torch; print('torch==' + torch.__version__)" > $(VENV)/constraints.txt
	$(BIN)/pip install -c $(VENV)/constraints.txt -e ".[dev,eval,app,singing,cluster]"
	@$(MAKE) --no-print-directory flite
	@touch $(STAMP)

# Flite (the synthetic corpus's voices): the system's libflite1 when present, otherwise Debian's
# package unpacked into $(FLITE) (no root needed; ns2 looks there). Without apt, a warning: the
# espeak-only corpus sizes still work, and NS2_FLITE_LIB_DIR can point at a Flite build.
flite:
	@if ldconfig -p 2>/dev/null | grep -q 'libflite_cmu_us_rms.so.1' || [ -e $(FLITE)/usr/lib ]; then \
	  echo "flite: found"; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  tmp=$$(mktemp -d) && dest=$(abspath $(FLITE)) && mkdir -p $$dest && \
	  if (cd $$tmp && { apt-get download libflite1 libasound2 >/dev/null 2>&1 || \
	        { [ "$$(id -u)" -eq 0 ] && apt-get update -qq && apt-get download libflite1 libasound2 >/dev/null 2>&1; }; } && \
	        for d in *.deb; do dpkg-deb -x $$d $$dest || exit 1; done); then \
	    echo "flite: unpacked Debian's libflite1 into $(FLITE)"; \
	  else rm -rf $$dest; echo "flite: WARNING could not fetch libflite1 with apt-get; the Flite corpus sizes (small) will not generate"; fi; \
	  rm -rf $$tmp; \
	else echo "flite: WARNING no libflite1 and no apt-get; the Flite corpus sizes (small) will not generate"; fi

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ns2 demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean-venv:
	rm -rf $(VENV)
