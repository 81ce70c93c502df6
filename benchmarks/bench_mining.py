"""Batch-hard triplet loss, forward + backward: oml_fast vs a dense plain-torch batch-hard vs the bare GEMM.

B = P x 4 (P labels, 4 items each), D = 512. All columns are measured in the same run:
  oml_fast  TripletLossWithMiner(margin=0.1, miner=HardTripletsMiner()): the compiled hard_mining op
            (tiled GEMM + per-row selection, no B x B matrix) and the loss on the B chosen triplets.
  dense     the usual plain-torch batch-hard (as OML's HardTripletsMiner does it): detached
            torch.cdist over the whole batch (B x B), masked max / min, then the same TripletLoss.
  GEMM      the bare x @ x.T alone (the floor for any exact batch-hard method).
  OML, PML  open-metric-learning's TripletLossWithMiner(HardTripletsMiner) and pytorch-metric-learning's
            TripletMarginLoss + BatchHardMiner, when importable ("skipped" otherwise).

Script (prints a markdown table):
    python benchmarks/bench_mining.py [--threads 2] [--sizes 128 512 2048 8192] [--repeats 5]
pytest-benchmark suite:
    pytest benchmarks/bench_mining.py
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import peers  # noqa: E402
from timing import interleaved_best_seconds, markdown_table  # noqa: E402

import oml_fast  # noqa: E402
from oml_fast.losses import TripletLoss, TripletLossWithMiner  # noqa: E402
from oml_fast.miners import HardTripletsMiner  # noqa: E402

DIM, INSTANCES, MARGIN = 512, 4, 0.1


def make_batch(batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(batch // INSTANCES).repeat_interleave(INSTANCES)
    return torch.randn(batch, DIM, generator=g), labels


def dense_batch_hard_loss(x: torch.Tensor, labels: torch.Tensor, criterion: TripletLoss) -> torch.Tensor:
    """Plain-torch batch-hard: a full B x B distance matrix, masked arg-max / arg-min."""
    with torch.no_grad():
        dist = torch.cdist(x, x)
        same = labels[:, None] == labels[None, :]
        hardest_pos = dist.masked_fill(~same, -1.0).fill_diagonal_(-1.0).argmax(dim=1)
        hardest_neg = dist.masked_fill(same, float("inf")).argmin(dim=1)
    return criterion(x, x[hardest_pos], x[hardest_neg])


def step(loss_fn, x: torch.Tensor, labels: torch.Tensor) -> None:
    leaf = x.detach().requires_grad_(True)
    loss_fn(leaf, labels).backward()


def _oml_loss():
    # Through peers.py: it stands in for the image libraries OML imports at module level and never
    # calls on this path (a plain `import oml` fails in the peers venv on torchvision).
    if peers.import_oml() is None:
        return None
    from oml.losses.triplet import TripletLossWithMiner as OMLLoss
    from oml.miners.inbatch_hard_tri import HardTripletsMiner as OMLMiner

    criterion = OMLLoss(margin=MARGIN, miner=OMLMiner())
    return lambda x, y: criterion(x, y.tolist())


def _pml_loss():
    try:
        from pytorch_metric_learning import losses, miners
    except Exception:
        return None
    loss, miner = losses.TripletMarginLoss(margin=MARGIN), miners.BatchHardMiner()
    return lambda x, y: loss(x, y, miner(x, y))


def run_grid(sizes: list[int], repeats: int) -> str:
    ours = TripletLossWithMiner(margin=MARGIN, miner=HardTripletsMiner())
    plain = TripletLoss(margin=MARGIN)
    peers = {"OML": _oml_loss(), "PML": _pml_loss()}
    rows = []
    for batch in sizes:
        x, labels = make_batch(batch)
        # Same triplets, same loss value: the comparison is between equal computations.
        torch.testing.assert_close(
            ours(x, labels), dense_batch_hard_loss(x, labels, plain), rtol=1e-4, atol=1e-4
        )
        fns = {
            "ours": lambda: step(ours, x, labels),  # noqa: B023
            "dense": lambda: step(lambda a, b: dense_batch_hard_loss(a, b, plain), x, labels),  # noqa: B023
            "gemm": lambda: x @ x.T,  # noqa: B023
        }
        for name, fn in peers.items():
            if fn is not None:
                fns[name] = lambda fn=fn: step(fn, x, labels)  # noqa: B023
        best = interleaved_best_seconds(fns, repeats if batch < 8192 else max(3, repeats // 3))
        t_ours, t_dense, t_gemm = best["ours"], best["dense"], best["gemm"]
        peer_cells = [f"{1e3 * best[name]:.1f}" if name in best else "skipped" for name in peers]
        rows.append(
            [
                batch,
                f"{1e3 * t_ours:.1f}",
                f"{1e3 * t_dense:.1f}",
                f"{1e3 * t_gemm:.1f}",
                f"{t_ours / t_gemm:.2f}",
                f"{t_dense / t_ours:.2f}",
                *peer_cells,
                f"{batch * batch * 4 / 2**20:.0f} MiB",
            ]
        )
        print(rows[-1], flush=True)
    header = [
        "B",
        "oml_fast ms",
        "dense torch ms",
        "GEMM ms",
        "oml_fast / GEMM",
        "dense / oml_fast",
        "OML ms",
        "PML ms",
        "B x B fp32 (not allocated by oml_fast)",
    ]
    return markdown_table(header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 512, 2048, 8192])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, oml_fast {oml_fast.__version__}, threads {torch.get_num_threads()}, D={DIM}"
    )
    print(run_grid(args.sizes, args.repeats))


# ---- pytest-benchmark suite -------------------------------------------------------------------
_B = 512


def test_bench_oml_fast_batch_hard(benchmark):
    x, labels = make_batch(_B)
    criterion = TripletLossWithMiner(margin=MARGIN, miner=HardTripletsMiner())
    benchmark(step, criterion, x, labels)


def test_bench_dense_torch_batch_hard(benchmark):
    x, labels = make_batch(_B)
    plain = TripletLoss(margin=MARGIN)
    benchmark(step, lambda a, b: dense_batch_hard_loss(a, b, plain), x, labels)


def test_bench_bare_gemm(benchmark):
    x, _ = make_batch(_B)
    benchmark(lambda: x @ x.T)


if __name__ == "__main__":
    main()
