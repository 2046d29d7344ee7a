"""PyTorch timings of the workloads in benches/src/bin/{matmul,reductions}.rs, for
ratios measured in the same run (these machines are noisy; compare ratios, not times).

    target/parity-venv/bin/python benches/torch/reference.py

(the venv `cargo xtask parity` makes; `$CARGO_TARGET_DIR/parity-venv` when that is set.)

Uses 2 threads, like the Rust benchmarks. Best-of-N wall time, after warm-up.
"""

import time

import torch

torch.set_num_threads(2)


def best_ms(f, repeats=21):
    f()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def main():
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for dtype, name in [(torch.float32, "f32"), (torch.float64, "f64")]:
        for n in (256, 1024):
            a = torch.randn(n, n, dtype=dtype)
            b = torch.randn(n, n, dtype=dtype)
            ms = best_ms(lambda: torch.mm(a, b), repeats=11 if n == 1024 else 51)
            print(f"matmul {name} {n}^3: {ms:8.3f} ms  {2 * n**3 / ms / 1e6:7.1f} GFLOP/s")

    x = torch.randn(64, 128, 1024)
    print(f"copy 64x128x1024 f32 (clone):            {best_ms(lambda: x.clone()):7.2f} ms")
    print(f"sum, last axis: forward                  {best_ms(lambda: x.sum(-1)):7.2f} ms")
    print(f"sum, all axes: forward                   {best_ms(lambda: x.sum()):7.2f} ms")
    print(f"log_softmax, last axis: forward          {best_ms(lambda: torch.log_softmax(x, -1)):7.2f} ms")
    y = torch.log_softmax(x, -1)
    dy = torch.randn_like(y)
    backward = lambda: torch._log_softmax_backward_data(dy, y, -1, torch.float32)
    print(f"log_softmax, last axis: backward         {best_ms(backward):7.2f} ms")
    xr = x.clone().requires_grad_()
    s = xr.sum(-1)
    g = torch.randn_like(s)
    print(f"sum, last axis: backward (autograd)      {best_ms(lambda: torch.autograd.grad(xr.sum(-1), xr, g)):7.2f} ms")


if __name__ == "__main__":
    main()
