"""Writes the PyTorch parity fixtures. Run by `cargo xtask parity`; by hand:

    target/parity-venv/bin/python xtask/parity/generate.py OUT_DIR

(the venv is in the cargo target directory: `$CARGO_TARGET_DIR/parity-venv` when set.)

Every family module `cases_<family>.py` (listed in FAMILIES) defines

    OPS   = {"op_name": lambda *tensors, **params: torch_result, ...}
    CASES = [Case("op_name", [inputs...], tag="...", **params), ...]

and each case becomes `OUT_DIR/<family>/<case name>_<dtype>.npz`, holding

    meta            uint8 1-d array: JSON {case, family, op, dtype, params, inputs:
                    [{shape, dtype, permute}], output: {shape, dtype}, torch, numpy}
    (meta's `diverges` is null, or why ferrograd knowingly differs from PyTorch there)
    input<i>        the i-th input (contiguous; the op sees `permute`d views of it):
                    in the case's dtype, bool, or int64 (indices)
    output          the op's result, contiguous
    grad_output     a seeded random upstream gradient (differentiable float outputs
                    only: not for a float result that depends on no float input)
    output<k>, grad_output<k>
                    the k-th result (k >= 1) and its upstream gradient, for an op that
                    gives a tuple (`torch.max(x, dim)`: values, indices); then meta
                    also lists them all as `outputs`
    grad_input<i>   d(sum over k of sum(output<k> * grad_output<k>)) / d input<i>
                    (float inputs only, except those made `.no_grad()`)

While a case runs, torch's default dtype is the case's, so ops that make float
tensors of their own (`arange`, a one-hot cast to float) make them in that dtype.

The values come from a generator seeded by the case's name (so adding a case leaves
the others' files unchanged), and the zip is written with fixed timestamps and
attributes, so two runs give byte-identical files.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import sys
import zipfile
import zlib

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from spec import Case  # noqa: E402

# One module `cases_<family>.py` per family; the fixtures go to `<family>/`.
FAMILIES = [
    "unary", "scalar", "binary", "compare", "reduce", "views", "matmul", "softmax", "join", "index", "loss", "conv",
    "conv_transpose", "upsample", "pool",
]

# Modules that write fixtures of their own layout: `write_fixtures(out_dir, write_npz,
# seed_of, DTYPES)` returns how many files it wrote.
WRITERS = ["models", "models_attention", "models_resnet"]

# Families that are not op cases write their fixtures themselves: `cases_<family>.py`
# defines `generate(out_dir, write_npz, seed_of) -> count`; they go to `<family>/`.
GENERATORS = ["optim", "sparse"]

DTYPES = {"f32": (np.float32, torch.float32), "f64": (np.float64, torch.float64)}
NP_DTYPE_NAMES = {
    np.dtype(np.float32): "f32",
    np.dtype(np.float64): "f64",
    np.dtype(bool): "bool",
    np.dtype(np.int64): "i64",
}


def seed_of(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def npy_bytes(array: np.ndarray) -> bytes:
    array = np.asarray(array)
    if not array.flags.c_contiguous:  # (not ascontiguousarray: it makes 0-d arrays 1-d)
        array = array.copy(order="C")
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, version=(1, 0), allow_pickle=False)
    return buf.getvalue()


def write_npz(path: str, arrays: dict) -> None:
    """An npz (zip of .npy) that depends only on `arrays`: fixed dates, stored."""
    with open(path, "wb") as f, zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3  # Unix, whatever the host
            info.external_attr = 0o644 << 16
            zf.writestr(info, npy_bytes(array))


def run_case(family: str, case: Case, fn, dtype: str) -> dict:
    np_dtype, torch_dtype = DTYPES[dtype]
    rng = np.random.default_rng(seed_of(case.name))

    arrays = {}
    leaves, args, inputs_meta = [], [], []
    for i, spec in enumerate(case.inputs):
        raw = np.asarray(spec.make(rng, spec.shape))
        assert raw.shape == tuple(spec.shape), (case.name, raw.shape, spec.shape)
        if spec.kind == "bool":
            base = raw.astype(bool)
            leaf = torch.from_numpy(base.copy())
        elif spec.kind == "index":
            assert np.all(raw == np.round(raw)), (case.name, "indices must be integers")
            base = raw.astype(np.int64)
            leaf = torch.from_numpy(base.copy())
        else:
            assert spec.kind == "float", (case.name, spec.kind)
            base = raw.astype(np_dtype)
            leaf = torch.from_numpy(base.copy()).requires_grad_(spec.grad)
        arrays[f"input{i}"] = base
        leaves.append(leaf if spec.kind == "float" and spec.grad else None)
        args.append(leaf.permute(*spec.permute) if spec.permute is not None else leaf)
        inputs_meta.append(
            {
                "shape": list(spec.shape),
                "dtype": NP_DTYPE_NAMES[base.dtype],
                "permute": list(spec.permute) if spec.permute is not None else None,
            }
        )

    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch_dtype)
    try:
        result = fn(*args, **case.params)
    finally:
        torch.set_default_dtype(default_dtype)
    # An op may give several results (torch.max(x, dim): values and indices), stored as
    # `output`, `output1`, ... with `grad_output`, `grad_output1`, ... for the
    # differentiable ones; a single result is stored exactly as before.
    outs = list(result) if isinstance(result, tuple) else [result]
    differentiable, upstream, outputs_meta = [], [], []
    for k, out in enumerate(outs):
        suffix = str(k) if k else ""
        out_np = out.detach().numpy()
        arrays[f"output{suffix}"] = out_np
        outputs_meta.append({"shape": list(out_np.shape), "dtype": NP_DTYPE_NAMES[out_np.dtype]})
        if out.dtype.is_floating_point:
            assert out.dtype == torch_dtype, (case.name, out.dtype)
        if out.dtype.is_floating_point and out.requires_grad:
            grad_output = rng.standard_normal(out_np.shape).astype(np_dtype)
            arrays[f"grad_output{suffix}"] = grad_output
            differentiable.append(out)
            upstream.append(torch.from_numpy(grad_output.copy()))
    grads = {}
    if differentiable:
        float_leaves = [leaf for leaf in leaves if leaf is not None]
        results = torch.autograd.grad(differentiable, float_leaves, grad_outputs=upstream, allow_unused=True)
        found = iter(results)
        for i, leaf in enumerate(leaves):
            if leaf is not None:
                g = next(found)
                grads[f"grad_input{i}"] = (
                    np.zeros(leaf.shape, dtype=np_dtype) if g is None else g.detach().numpy()
                )
    arrays.update(grads)

    meta = {
        "case": case.name,
        "diverges": case.diverges,
        "family": family,
        "op": case.op,
        "dtype": dtype,
        "params": case.params,
        "inputs": inputs_meta,
        "output": outputs_meta[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    if len(outs) > 1:
        meta["outputs"] = outputs_meta
    text = json.dumps(meta, sort_keys=True, allow_nan=False, separators=(",", ":"))
    return {"meta": np.frombuffer(text.encode("utf-8"), dtype=np.uint8), **arrays}


def main(argv: list) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir = argv[1]
    torch.set_num_threads(1)  # reductions in one fixed order
    names, ops_seen, count = set(), {}, 0
    for family in FAMILIES:
        module = importlib.import_module(f"cases_{family}")
        for op in module.OPS:
            if op in ops_seen:
                raise SystemExit(f"op `{op}` defined in both cases_{ops_seen[op]} and cases_{family}")
            ops_seen[op] = family
        os.makedirs(os.path.join(out_dir, family), exist_ok=True)
        for case in module.CASES:
            if case.op not in module.OPS:
                raise SystemExit(f"case `{case.name}` in cases_{family}: no op `{case.op}` in its OPS")
            if case.name in names:
                raise SystemExit(f"two cases are named `{case.name}`; give one a `tag`")
            names.add(case.name)
            for dtype in case.dtypes:
                try:
                    arrays = run_case(family, case, module.OPS[case.op], dtype)
                except Exception as e:
                    raise SystemExit(f"case `{case.name}` ({dtype}) in cases_{family}: {type(e).__name__}: {e}")
                write_npz(os.path.join(out_dir, family, f"{case.name}_{dtype}.npz"), arrays)
                count += 1
    # Whole models, written by modules of their own (see models.py).
    for writer in WRITERS:
        count += importlib.import_module(writer).write_fixtures(out_dir, write_npz, seed_of, DTYPES)
    for family in GENERATORS:
        module = importlib.import_module(f"cases_{family}")
        count += module.generate(os.path.join(out_dir, family), write_npz, seed_of)
    print(f"wrote {count} fixtures ({len(names)} cases, {len(ops_seen)} ops) with torch {torch.__version__}, "
          f"numpy {np.__version__}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
