#!/usr/bin/python3
"""`make bench-convs`: how fast the seed network's convolutions run on this machine, alone.

For each convolution of an experiment's network (built from its YAML as bench.py's peers build it), in
channels-last as the runner trains: forward, input gradient (not for the first layer, whose input needs
none) and weight gradient, timed through LibTorch's oneDNN kernels. "warm" repeats one op on the same
tensors, which stay in cache; "cold" cycles through 8 copies and a 64 MB flush between calls, as in a
training step, where a layer's saved input comes back from DRAM. GFLOP/s counts 2 per multiply-add.
The sum of the cold column is what no change outside the convolutions can take away from a step.
Uses Debian's python3-torch (the same LibTorch 1.13.1 as the runner). Run with /usr/bin/python3.
"""
import argparse, os, sys, time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import build  # noqa: E402  (the same network as the peers)
import yaml  # noqa: E402


def convs_of(exp):
    model = yaml.safe_load(open(exp))["model"]
    net = build(model["layers"], model, 3, 32)[0]
    shapes = []
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.append((m, i[0].shape, o.shape)))
             for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        net(torch.zeros(1, 3, 32, 32))
    for h in hooks:
        h.remove()
    return shapes


def timed(fn, reps, flush):
    """Mean ms of fn(i); the flush between calls is outside the timed part."""
    for i in range(3):
        fn(i)
    total = 0.0
    for i in range(reps):
        if flush is not None:
            flush.add_(1)
        start = time.perf_counter()
        fn(i)
        total += time.perf_counter() - start
    return total / reps * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--reps", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cl = torch.channels_last
    flush = torch.zeros(16 << 20)
    print(f"{args.experiment}: convolutions alone, batch {args.batch}, {args.threads} threads, channels-last "
          f"(ms per call; GFLOP/s)")
    print(f"{'convolution':34s} {'warm fwd':>9s} {'dgrad':>7s} {'wgrad':>7s} {'cold fwd':>9s} {'dgrad':>7s} "
          f"{'wgrad':>7s} {'cold GFLOP/s':>12s}")
    totals = {"warm": 0.0, "cold": 0.0}
    flops_total = 0.0
    for index, (m, in_shape, out_shape) in enumerate(convs_of(args.experiment)):
        n = args.batch
        xs = [torch.randn(n, *in_shape[1:]).contiguous(memory_format=cl) for _ in range(8)]
        gs = [torch.randn(n, *out_shape[1:]).contiguous(memory_format=cl) for _ in range(8)]
        w = m.weight.detach().contiguous(memory_format=cl)
        first = index == 0
        macs = n * out_shape[2] * out_shape[3] * m.out_channels * m.in_channels * m.kernel_size[0] * m.kernel_size[1]
        flops = 2 * macs * (2 if first else 3)
        flops_total += flops
        cells = {}
        for mode in ("warm", "cold"):
            pick = (lambda i: i % 8) if mode == "cold" else (lambda i: 0)
            fl = flush if mode == "cold" else None
            back = lambda i, mask: torch.ops.aten.convolution_backward(
                gs[pick(i)], xs[pick(i)], w, None, list(m.stride), list(m.padding), list(m.dilation), False, [0, 0],
                1, mask)
            fwd = timed(lambda i: torch.conv2d(xs[pick(i)], w, None, m.stride, m.padding), args.reps, fl)
            dgrad = 0.0 if first else timed(lambda i: back(i, [True, False, False]), args.reps, fl)
            wgrad = timed(lambda i: back(i, [False, True, False]), args.reps, fl)
            cells[mode] = (fwd, dgrad, wgrad)
            totals[mode] += fwd + dgrad + wgrad
        name = f"{m.in_channels}->{m.out_channels} k{m.kernel_size[0]} p{m.padding[0]} @{in_shape[2]}x{in_shape[3]}"
        w_, c_ = cells["warm"], cells["cold"]
        dg = lambda v: "-" if first else f"{v:.2f}"
        print(f"{name:34s} {w_[0]:9.2f} {dg(w_[1]):>7s} {w_[2]:7.2f} {c_[0]:9.2f} {dg(c_[1]):>7s} {c_[2]:7.2f} "
              f"{flops / sum(c_) / 1e6:12.0f}")
    print(f"{'all convolutions':34s} {totals['warm']:25.2f} {totals['cold']:27.2f} "
          f"{flops_total / totals['cold'] / 1e6:12.0f}")
    print(f"per step: {flops_total / 1e9:.2f} GFLOP in the convolutions; warm {flops_total / totals['warm'] / 1e6:.0f} "
          f"GFLOP/s, cold {flops_total / totals['cold'] / 1e6:.0f} GFLOP/s")


if __name__ == "__main__":
    main()
