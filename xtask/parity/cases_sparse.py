"""Sparse embedding gradients and the optimizers that take them, for
`crates/ferrograd-optim/tests/sparse_parity.rs`.

Not op cases: `generate(out_dir, write_npz, seed_of)` is called by `generate.py` and
writes `out_dir/<case>_<dtype>.zip` (npz archives named `.zip`, as `cases_optim.py`'s,
so the op parity test leaves them alone). Each fixture is PyTorch's
`nn.Embedding(NUM, DIM, sparse=True)` trained for `STEPS` steps by one optimizer
(`foreach=False`), with the loss `sum(embedding(ids) * grad_output)`:

    meta                    JSON {case, optimizer, dtype, config, num_embeddings,
                            embedding_dim, steps, torch, numpy}
    weight                  the initial table, (NUM, DIM)
    ids_step<k>             int64 (LOOKUPS,): step k's lookups, with repeats
    grad_output_step<k>     (LOOKUPS, DIM): the upstream gradient of the lookups
    grad_indices_step<k>    int64: the coalesced sparse gradient's rows (sorted)
    grad_values_step<k>     (rows, DIM): their values, repeats summed
    weight_step<k>          the table after step k
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch

DTYPES = {"f32": (np.float32, torch.float32), "f64": (np.float64, torch.float64)}
STEPS = 5
NUM = 20
DIM = 4
LOOKUPS = 10

OPTIMIZERS = {"sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad, "sparse_adam": torch.optim.SparseAdam}

# (case, optimizer, config). An empty config is PyTorch's defaults.
CASES = [
    ("sgd", "sgd", {"lr": 0.1}),
    ("sgd_momentum", "sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("adagrad_defaults", "adagrad", {}),
    ("adagrad", "adagrad", {"lr": 0.1, "lr_decay": 0.05, "initial_accumulator_value": 0.1, "eps": 1e-6}),
    ("sparse_adam_defaults", "sparse_adam", {}),
    ("sparse_adam", "sparse_adam", {"lr": 0.05, "betas": [0.8, 0.95], "eps": 1e-6}),
    ("sparse_adam_maximize", "sparse_adam", {"lr": 0.05, "maximize": True}),
]


def torch_config(name: str, config: dict) -> dict:
    config = {k: tuple(v) if k == "betas" else v for k, v in config.items()}
    if name != "sparse_adam":  # SparseAdam has no foreach implementation to turn off
        config["foreach"] = False
    return config


def run(case: str, name: str, config: dict, dtype: str, seed: int) -> dict:
    np_dtype, _ = DTYPES[dtype]
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((NUM, DIM)).astype(np_dtype)
    embedding = torch.nn.Embedding(NUM, DIM, sparse=True, _weight=torch.from_numpy(weight.copy()))
    optimizer = OPTIMIZERS[name](embedding.parameters(), **torch_config(name, config))
    arrays = {"weight": weight}
    for step in range(1, STEPS + 1):
        # Few distinct rows, so that lookups repeat within a step and across steps.
        ids = rng.integers(0, NUM // 2 + step, size=LOOKUPS).astype(np.int64)
        grad_output = rng.standard_normal((LOOKUPS, DIM)).astype(np_dtype)
        optimizer.zero_grad()
        (embedding(torch.from_numpy(ids)) * torch.from_numpy(grad_output)).sum().backward()
        grad = embedding.weight.grad.coalesce()
        arrays[f"ids_step{step}"] = ids
        arrays[f"grad_output_step{step}"] = grad_output
        arrays[f"grad_indices_step{step}"] = grad.indices()[0].numpy().astype(np.int64)
        arrays[f"grad_values_step{step}"] = grad.values().detach().numpy().copy()
        optimizer.step()
        arrays[f"weight_step{step}"] = embedding.weight.detach().numpy().copy()
    meta = {
        "case": case,
        "optimizer": name,
        "dtype": dtype,
        "config": config,
        "num_embeddings": NUM,
        "embedding_dim": DIM,
        "steps": STEPS,
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    text = json.dumps(meta, sort_keys=True, allow_nan=False, separators=(",", ":"))
    return {"meta": np.frombuffer(text.encode("utf-8"), dtype=np.uint8), **arrays}


def generate(out_dir: str, write_npz, seed_of) -> int:
    """Writes every fixture of this family into `out_dir`; returns how many."""
    os.makedirs(out_dir, exist_ok=True)
    names = [case for case, *_ in CASES]
    if len(set(names)) != len(names):
        raise SystemExit("cases_sparse: two cases share a name")
    count = 0
    default_dtype = torch.get_default_dtype()
    for case, name, config in CASES:
        for dtype in DTYPES:
            # The step counts PyTorch keeps are tensors of the default dtype.
            torch.set_default_dtype(DTYPES[dtype][1])
            try:
                arrays = run(case, name, config, dtype, seed_of(case))
            finally:
                torch.set_default_dtype(default_dtype)
            write_npz(os.path.join(out_dir, f"{case}_{dtype}.zip"), arrays)
            count += 1
    return count
