"""PyTorch side of benches/src/bin/sparse.rs (issue 14): one SGD step of a
100 000 × 64 nn.Embedding looked up by 32 bags of 8 indices (summed per bag), with
sparse=True and with sparse=False.

    target/parity-venv/bin/python benches/torch/sparse.py --serve

Each stdin line is a request, answered by one line of `name=value` pairs:

    round N    on N threads: the median µs per step of each workload
"""

import sys

import torch
from torch import nn

from timing import per_iteration_us

VOCAB, DIM, BAGS, BAG = 100_000, 64, 32, 8


def step(table, opt, ids):
    # Gradients freed each step, as ferrograd's side allocates fresh ones.
    opt.zero_grad(set_to_none=True)
    loss = table(ids).sum(1).square().mean()
    loss.backward()
    opt.step()


def main():
    torch.manual_seed(0)
    ids = torch.randint(0, VOCAB, (BAGS, BAG))
    tables = {name: nn.Embedding(VOCAB, DIM, sparse=sparse) for name, sparse in [("sparse_step", True), ("dense_step", False)]}
    opts = {name: torch.optim.SGD(t.parameters(), lr=0.01) for name, t in tables.items()}
    print(f"torch {torch.__version__}", flush=True)
    for line in sys.stdin:
        match line.split():
            case ["round", threads]:
                torch.set_num_threads(int(threads))
                times = {n: per_iteration_us(lambda n=n: step(tables[n], opts[n], ids)) for n in tables}
                print(" ".join(f"{k}={v:.4f}" for k, v in times.items()), flush=True)


if __name__ == "__main__":
    main()
