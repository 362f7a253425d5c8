# Convenience targets; the README's two commands need only bash.
.PHONY: demo test lint bench fuzz overlay

demo:
	bash scripts/quickstart.sh

test:
	bash scripts/quickstart.sh test

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

bench:
	.venv/bin/python benchmarks/emu_vs_torch.py

fuzz:
	.venv/bin/python benchmarks/fuzz_bundle.py --count 100000 --seed 1

overlay:
	$(MAKE) -C overlay
