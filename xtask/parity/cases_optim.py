"""Optimizer trajectories and learning-rate schedules, for `ferrograd-optim`'s tests.

Not op cases: `generate(out_dir, write_npz, seed_of)` is called by `generate.py` and
writes `out_dir/<case>_<dtype>.zip` (optimizers) and `out_dir/<case>.zip` (schedules).
The files are npz archives; they end in `.zip` so that the op parity test of
ferrograd-autodiff, which reads every `.npz` below `fixtures/parity/`, leaves them to
`crates/ferrograd-optim/tests/parity.rs`.

An optimizer fixture holds

    meta                JSON {case, kind: "optimizer", optimizer, dtype, config,
                        group1 (null, or the config of a second parameter group holding
                        `param1` only), steps, torch, numpy}
    param0, param1      the initial parameters, shapes (3, 4) and (4,)
    grad<i>_step<k>     the gradient given to parameter i at step k (1..=5), seeded
                        random values (not computed from a loss)
    param<i>_step<k>    parameter i after step k

and a schedule fixture

    meta                JSON {case, kind: "schedule", schedule: {kind, params},
                        initial_lrs, steps, torch, numpy}
    lrs                 float64 (steps + 1, groups): `get_last_lr()` after creating the
                        schedule (row 0) and after each step

where a schedule is {"kind": "step", "params": {...}}, and the chaining ones
(`sequential`, `chained`) hold a list of schedules in their params. The optimizer under
a schedule is SGD with two parameter groups of rates `initial_lrs`.
"""

from __future__ import annotations

import json

import numpy as np
import torch

DTYPES = {"f32": (np.float32, torch.float32), "f64": (np.float64, torch.float64)}
STEPS = 5
SCHEDULE_STEPS = 20
SHAPES = [(3, 4), (4,)]

OPTIMIZERS = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
}

# (case, optimizer, config, config of a second group holding param1 or None). An
# empty config is PyTorch's defaults, which ferrograd's `Default` must match.
OPTIMIZER_CASES = [
    ("sgd_defaults", "sgd", {}, None),
    ("sgd_plain", "sgd", {"lr": 0.1}, None),
    ("sgd_momentum", "sgd", {"lr": 0.1, "momentum": 0.9}, None),
    ("sgd_dampening", "sgd", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3}, None),
    ("sgd_nesterov", "sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True}, None),
    ("sgd_weight_decay", "sgd", {"lr": 0.1, "momentum": 0.5, "weight_decay": 0.1}, None),
    ("sgd_maximize", "sgd", {"lr": 0.1, "momentum": 0.9, "maximize": True}, None),
    ("sgd_groups", "sgd", {"lr": 0.1, "momentum": 0.9}, {"lr": 0.01, "momentum": 0.5, "weight_decay": 0.2}),
    ("adam_defaults", "adam", {}, None),
    ("adam_lr", "adam", {"lr": 0.05, "betas": [0.8, 0.95], "eps": 1e-6}, None),
    ("adam_weight_decay", "adam", {"lr": 0.05, "weight_decay": 0.1}, None),
    ("adam_amsgrad", "adam", {"lr": 0.05, "amsgrad": True}, None),
    ("adam_maximize", "adam", {"lr": 0.05, "maximize": True, "amsgrad": True}, None),
    ("adam_groups", "adam", {"lr": 0.05}, {"lr": 0.2, "betas": [0.5, 0.9]}),
    ("adamw_defaults", "adamw", {}, None),
    ("adamw_weight_decay", "adamw", {"lr": 0.05, "weight_decay": 0.5}, None),
    ("adamw_amsgrad", "adamw", {"lr": 0.05, "weight_decay": 0.1, "amsgrad": True}, None),
    ("rmsprop_defaults", "rmsprop", {}, None),
    ("rmsprop_centered", "rmsprop", {"lr": 0.05, "alpha": 0.9, "centered": True}, None),
    ("rmsprop_momentum", "rmsprop", {"lr": 0.05, "momentum": 0.9}, None),
    (
        "rmsprop_all",
        "rmsprop",
        {"lr": 0.05, "momentum": 0.5, "centered": True, "weight_decay": 0.1, "eps": 1e-4, "maximize": True},
        None,
    ),
    ("adagrad_defaults", "adagrad", {}, None),
    (
        "adagrad_decay",
        "adagrad",
        {"lr": 0.1, "lr_decay": 0.1, "weight_decay": 0.1, "initial_accumulator_value": 0.5, "eps": 1e-6},
        None,
    ),
    ("adagrad_maximize", "adagrad", {"lr": 0.1, "maximize": True}, None),
]


def sched(kind: str, **params) -> dict:
    return {"kind": kind, "params": params}


SCHEDULE_CASES = [
    ("step", sched("step", step_size=3, gamma=0.5)),
    ("multistep", sched("multistep", milestones=[2, 5, 5, 9], gamma=0.3)),
    ("exponential", sched("exponential", gamma=0.9)),
    ("cosine", sched("cosine", T_max=7, eta_min=0.001)),
    ("linear_defaults", sched("linear")),
    ("linear_warmup", sched("linear", start_factor=0.25, end_factor=1.0, total_iters=6)),
    ("linear_decay", sched("linear", start_factor=1.0, end_factor=0.1, total_iters=8)),
    ("onecycle_defaults", sched("onecycle", max_lr=[1.0, 0.5], total_steps=SCHEDULE_STEPS)),
    (
        "onecycle_three_phase",
        sched(
            "onecycle",
            max_lr=[1.0, 0.5],
            # PyTorch allows a step to `total_steps` itself, one past the last phase's
            # end, where a linear anneal overshoots below zero (-0.008 here with 20);
            # ferrograd refuses a negative rate, so this case stops a step earlier.
            total_steps=SCHEDULE_STEPS + 1,
            pct_start=0.25,
            anneal_strategy="linear",
            div_factor=10.0,
            final_div_factor=100.0,
            three_phase=True,
        ),
    ),
    (
        "sequential_warmup_cosine",
        sched(
            "sequential",
            schedulers=[sched("linear", start_factor=0.1, total_iters=4), sched("cosine", T_max=10)],
            milestones=[5],
        ),
    ),
    (
        "sequential_three",
        sched(
            "sequential",
            schedulers=[
                sched("exponential", gamma=0.8),
                sched("step", step_size=2, gamma=0.5),
                sched("linear", start_factor=0.5, total_iters=3),
            ],
            milestones=[3, 9],
        ),
    ),
    ("chained", sched("chained", schedulers=[sched("exponential", gamma=0.9), sched("step", step_size=4, gamma=0.5)])),
    (
        "chained_warmup_multistep",
        sched(
            "chained",
            schedulers=[sched("linear", start_factor=0.2, total_iters=5), sched("multistep", milestones=[6, 12])],
        ),
    ),
]

INITIAL_LRS = [0.1, 0.05]


def torch_config(config: dict) -> dict:
    return {k: tuple(v) if k == "betas" else v for k, v in config.items()}


def run_optimizer(case: str, name: str, config: dict, group1, dtype: str, seed: int) -> dict:
    np_dtype, torch_dtype = DTYPES[dtype]
    rng = np.random.default_rng(seed)
    arrays = {}
    params = []
    for i, shape in enumerate(SHAPES):
        value = rng.standard_normal(shape).astype(np_dtype)
        arrays[f"param{i}"] = value
        params.append(torch.from_numpy(value.copy()).requires_grad_(True))
    if group1 is None:
        groups = [{"params": params}]
    else:
        groups = [{"params": [params[0]]}, {"params": [params[1]], **torch_config(group1)}]
    optimizer = OPTIMIZERS[name](groups, foreach=False, **torch_config(config))
    for step in range(1, STEPS + 1):
        for i, p in enumerate(params):
            grad = rng.standard_normal(p.shape).astype(np_dtype)
            arrays[f"grad{i}_step{step}"] = grad
            p.grad = torch.from_numpy(grad.copy())
        optimizer.step()
        for i, p in enumerate(params):
            arrays[f"param{i}_step{step}"] = p.detach().numpy().copy()
    meta = {
        "case": case,
        "kind": "optimizer",
        "optimizer": name,
        "dtype": dtype,
        "config": config,
        "group1": group1,
        "steps": STEPS,
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    return {"meta": encode(meta), **arrays}


def build_schedule(spec: dict, optimizer):
    kind, params = spec["kind"], dict(spec["params"])
    if kind == "sequential":
        children = [build_schedule(child, optimizer) for child in params.pop("schedulers")]
        return torch.optim.lr_scheduler.SequentialLR(optimizer, children, **params)
    if kind == "chained":
        children = [build_schedule(child, optimizer) for child in params.pop("schedulers")]
        return torch.optim.lr_scheduler.ChainedScheduler(children, optimizer=optimizer)
    classes = {
        "step": torch.optim.lr_scheduler.StepLR,
        "multistep": torch.optim.lr_scheduler.MultiStepLR,
        "exponential": torch.optim.lr_scheduler.ExponentialLR,
        "cosine": torch.optim.lr_scheduler.CosineAnnealingLR,
        "linear": torch.optim.lr_scheduler.LinearLR,
        "onecycle": torch.optim.lr_scheduler.OneCycleLR,
    }
    return classes[kind](optimizer, **params)


def run_schedule(case: str, spec: dict) -> dict:
    groups = [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in INITIAL_LRS]
    optimizer = torch.optim.SGD(groups, momentum=0.9)
    schedule = build_schedule(spec, optimizer)
    rows = [list(schedule.get_last_lr())]
    for _ in range(SCHEDULE_STEPS):
        optimizer.step()  # (no gradients: nothing moves; PyTorch wants it before the schedule's step)
        schedule.step()
        rows.append(list(schedule.get_last_lr()))
    meta = {
        "case": case,
        "kind": "schedule",
        "schedule": spec,
        "initial_lrs": INITIAL_LRS,
        "steps": SCHEDULE_STEPS,
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    return {"meta": encode(meta), "lrs": np.array(rows, dtype=np.float64)}


def encode(meta: dict) -> np.ndarray:
    text = json.dumps(meta, sort_keys=True, allow_nan=False, separators=(",", ":"))
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def generate(out_dir: str, write_npz, seed_of) -> int:
    """Writes every fixture of this family into `out_dir`; returns how many."""
    import os

    os.makedirs(out_dir, exist_ok=True)
    names = [case for case, *_ in OPTIMIZER_CASES] + [case for case, _ in SCHEDULE_CASES]
    if len(set(names)) != len(names):
        raise SystemExit("cases_optim: two cases share a name")
    count = 0
    default_dtype = torch.get_default_dtype()
    for case, name, config, group1 in OPTIMIZER_CASES:
        for dtype in DTYPES:
            # The step counts PyTorch keeps are tensors of the default dtype.
            torch.set_default_dtype(DTYPES[dtype][1])
            try:
                arrays = run_optimizer(case, name, config, group1, dtype, seed_of(case))
            finally:
                torch.set_default_dtype(default_dtype)
            write_npz(os.path.join(out_dir, f"{case}_{dtype}.zip"), arrays)
            count += 1
    for case, spec in SCHEDULE_CASES:
        write_npz(os.path.join(out_dir, f"{case}.zip"), run_schedule(case, spec))
        count += 1
    return count
