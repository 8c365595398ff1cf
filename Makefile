# The two documented entry points. Both create .venv and install exactly what README documents.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXTRAS ?= cpu,text,mm,video,dev
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test install lint bench clean nw-ucla fault-sweep text-variants

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	touch $@

install: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/zsar demo --out runs/demo

test: $(BIN)/.installed
	$(BIN)/python -m ruff check zsar tests benchmarks
	$(BIN)/python -m pytest -q

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/cache_io.py
	$(BIN)/python benchmarks/head_protocol.py
	$(BIN)/python benchmarks/batched_runs.py
	$(BIN)/python benchmarks/prototype_search.py
	$(BIN)/python benchmarks/skeleton_extract.py
	$(BIN)/python benchmarks/sadvae_speed.py
	$(BIN)/python benchmarks/video_extract.py

# Kill an extraction at every write call and check the rerun (needs strace; minutes)
fault-sweep: $(BIN)/.installed
	$(BIN)/python benchmarks/fault_sweep.py --rows 200 --batch 64 --data ../shared/datasets/nw-ucla/all_sqe
	$(BIN)/python benchmarks/fault_sweep.py --rows 120 --batch 40

# Text variants x heads on the demo's splits, paired with prompts (about 15 minutes); for NW-UCLA after `make
# nw-ucla`: python benchmarks/text_variants.py experiments/nw_ucla_zsl.toml --out runs/nw_ucla_zsl
text-variants: $(BIN)/.installed
	$(BIN)/python benchmarks/text_variants.py zsar/experiment/builtin/demo.toml --out runs/demo_text

# The real-data worked example (needs NW-UCLA at ../shared/datasets/nw-ucla/all_sqe, or edit the config)
nw-ucla: $(BIN)/.installed
	$(BIN)/zsar run experiments/nw_ucla_zsl.toml --out runs/nw_ucla_zsl

clean:
	rm -rf $(VENV) runs
