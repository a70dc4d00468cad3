"""`ckc parity`: where a compiled model first diverges from a reference.

- calls.py     the record build's call table (record.json), names and layers
- record.py    runs a record build (lower-to-c{record}) and collects every
               kernel call's outputs
- reference/   the same tensors from a reference: the tensorop IR
               (ckc/interpreters/tensorop.py), transformers (forward hooks),
               llama.cpp (its graph callback in tools/llamacpp/ckc_llama.c)
- compare.py   alignment, errors per op, tolerances, the first divergence
- report.py    the table, parity.json and parity.png
- stages.py    `--stages`: the tensorop reference after every pipeline pass
- run.py       the whole command
"""
