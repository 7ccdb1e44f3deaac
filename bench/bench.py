#!/usr/bin/python3
"""`make bench`: the runner against two PyTorch peers on the same machine, same network, same batch and threads.

Peer (a) "notebook": torchvision-style per-image transforms in a Dataset and a DataLoader with 2 workers.
Peer (b) "tuned": the whole set as one uint8 tensor, batched crop+flip, no DataLoader; run in NCHW and in
channels-last, the faster one counts. Its crop takes one offset per batch, cheaper than the runner's
per-image offsets, so the comparison leans towards the peer.
All measure steady-state training images/s (after warm-up, augmentation and optimizer step included).
Every contender runs --repeat times, interleaved round by round (this machine's speed drifts by tens of
percent over minutes); the table shows medians, and the min-max of each.
Uses Debian's python3-torch (the LibTorch release the runner builds against there: 1.13.1 on Debian 12, 2.6 on
Debian 13). Run with /usr/bin/python3.
The peers get the allocator settings the runner gives itself (mallopt in runner/cli/main.cpp: mmap and trim
thresholds of 1 GiB), through GLIBC_TUNABLES; on glibc's defaults a peer loses 15-20 % to page faults.
"""
import argparse, json, os, re, statistics, subprocess, sys, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml


def expand(text):
    def sub(m):
        var, _, default = m.group(1).partition(":-")
        return os.environ.get(var) or default
    return re.sub(r"\$\{([^}]*)\}", sub, text) if isinstance(text, str) else text


def items(spec):
    """Yields (type, options) of a layer list in the DSL's shorthand forms."""
    shorthand = {"maxpool": "kernel", "avgpool": "kernel", "dropout": "p", "linear": "out", "residual": "layers"}
    for item in spec:
        if isinstance(item, str):
            yield item, {}
        else:
            (kind, value), = item.items()
            yield kind, value if isinstance(value, dict) else ({} if value is None else {shorthand[kind]: value})


class Residual(nn.Module):
    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)


def build(layers, model, channels, size):
    """The same module stack the runner builds (the subset the seed networks use)."""
    mods = []
    acts = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}
    for kind, opt in items(layers):
        if kind == "conv":
            block = opt.get("block", True)
            steps = model.get("block", ["conv", "relu", "norm"]) if block is True else (["conv"] if block is False else block)
            k, p, s = opt.get("kernel", 3), opt.get("padding", 0), opt.get("stride", 1)
            for step in steps:
                if step == "conv":
                    mods.append(nn.Conv2d(channels, opt["out"], k, s, p, bias=opt.get("bias", False)))
                    channels, size = opt["out"], (size + 2 * p - k) // s + 1
                elif step == "norm":
                    mods.append(norm(opt.get("norm") or model.get("norm", "batch"), channels, model.get("groups", 4)))
                else:
                    mods.append(acts[step]())
        elif kind in ("maxpool", "avgpool"):
            k = opt.get("kernel", 2)
            mods.append((nn.MaxPool2d if kind == "maxpool" else nn.AvgPool2d)(k))
            size //= k
        elif kind == "gap":
            mods.append(nn.AvgPool2d(size))
            size = 1
        elif kind == "residual":
            body, channels, size = build(opt["layers"], model, channels, size)
            mods.append(Residual(body))
        elif kind == "dropout":
            mods.append(nn.Dropout(opt.get("p", 0.1)))
        elif kind in acts:
            mods.append(acts[kind]())
        else:
            raise SystemExit(f"bench.py: layer type {kind} is not mirrored in the Python peer")
    return nn.Sequential(*mods), channels, size


def norm(kind, channels, groups):
    return {"batch": lambda: nn.BatchNorm2d(channels), "layer": lambda: nn.GroupNorm(1, channels),
            "group": lambda: nn.GroupNorm(groups, channels), "none": nn.Identity}[kind]()


def load_cifar(root, limit):
    raw = np.concatenate([np.fromfile(os.path.join(root, f"data_batch_{i}.bin"), np.uint8) for i in range(1, 6)])
    raw = raw.reshape(-1, 3073)[:limit]
    return torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).copy()), torch.from_numpy(raw[:, 0].astype(np.int64))


MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
STD = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)


def time_steps(net, batches, steps, warmup, fmt):
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    net.train()
    it = iter(batches)
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        x, y = next(it)
        x = x.contiguous(memory_format=fmt)
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    return steps * x.shape[0] / (time.perf_counter() - start)


class NotebookSet(torch.utils.data.Dataset):
    """Per-image pipeline as notebooks write it: ToTensor, RandomCrop(32, 4), flip, Normalize."""

    def __init__(self, images, labels):
        import torchvision.transforms as T
        self.images, self.labels = images, labels
        self.tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(),
                             T.ConvertImageDtype(torch.float), T.Normalize(MEAN.flatten(), STD.flatten())])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.tf(self.images[i]), self.labels[i]


def tuned_batches(images, labels, batch):
    g = torch.Generator().manual_seed(0)
    while True:
        idx = torch.randint(0, len(labels), (batch,), generator=g)
        x = (images[idx].float() / 255 - MEAN) / STD
        x = F.pad(x, (4, 4, 4, 4))
        dy, dx = torch.randint(0, 9, (2,), generator=g).tolist()  # one offset per batch keeps it a view
        x = x[:, :, dy:dy + 32, dx:dx + 32]
        flip = torch.rand(batch, generator=g) < 0.5
        yield torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x), labels[idx]


def peer(exp, mode, batch, threads, steps, warmup):
    torch.set_num_threads(threads)
    spec = yaml.safe_load(open(exp))
    model = spec["model"]
    root = expand((spec.get("data") or {}).get("root", "${CIFAR10_ROOT:-data/cifar-10-batches-bin}"))
    images, labels = load_cifar(root, 20000)
    if mode == "notebook":
        loader = torch.utils.data.DataLoader(NotebookSet(images, labels), batch_size=batch, shuffle=True,
                                             num_workers=2, drop_last=True, persistent_workers=True)
        def forever():
            while True:
                yield from loader
        torch.manual_seed(1)
        net = nn.Sequential(build(model["layers"], model, 3, 32)[0], nn.Flatten())
        return {"format": "nchw", "train_images_per_s": time_steps(net, forever(), steps, warmup, torch.contiguous_format)}
    result = {}
    for name, fmt in (("nchw", torch.contiguous_format), ("channels_last", torch.channels_last)):
        torch.manual_seed(1)
        net = nn.Sequential(build(model["layers"], model, 3, 32)[0], nn.Flatten()).to(memory_format=fmt)
        result[name] = time_steps(net, tuned_batches(images, labels, batch), steps, warmup, fmt)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiments", nargs="+")
    ap.add_argument("--runner", default="build/runner")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3, help="rounds per experiment; the table shows medians")
    ap.add_argument("--isa", choices=["native", "avx2"], default="native",
                    help="avx2: every contender with oneDNN and ATen capped at AVX2 (and the runner's norm kernels' "
                         "AVX2 copy), the code paths of a CPU without AVX-512")
    ap.add_argument("--peer", choices=["notebook", "tuned"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.isa == "avx2":  # inherited by the runner and the peers, each a fresh process
        os.environ.update(ONEDNN_MAX_CPU_ISA="AVX2", ATEN_CPU_CAPABILITY="avx2", RUNNER_NORM_ISA="avx2")
    if a.peer:  # one peer in a fresh process, so peers do not share warm state
        print(json.dumps(peer(a.experiments[0], a.peer, a.batch, a.threads, a.steps, a.warmup)))
        return
    # The runner's mallopt(M_MMAP_THRESHOLD / M_TRIM_THRESHOLD, 1 GiB), for the Python peers.
    tunables = "glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=1073741824"
    peer_env = dict(os.environ, GLIBC_TUNABLES=":".join(filter(None, [os.environ.get("GLIBC_TUNABLES"), tunables])))
    rows = []
    common = ["--batch", str(a.batch), "--threads", str(a.threads), "--steps", str(a.steps), "--warmup", str(a.warmup)]
    for exp in a.experiments:
        runs = {"runner": [], "notebook": [], "nchw": [], "channels_last": []}
        for _ in range(a.repeat):
            out = subprocess.check_output([a.runner, "bench", exp, "--json"] + common).decode()
            runs["runner"].append(json.loads(out.strip().splitlines()[-1])["train_images_per_s"])
            for mode in ("notebook", "tuned"):
                res = json.loads(subprocess.check_output([sys.executable, __file__, exp, "--peer", mode] + common,
                                                         env=peer_env).decode())
                if mode == "notebook":
                    runs["notebook"].append(res["train_images_per_s"])
                else:
                    runs["nchw"].append(res["nchw"])
                    runs["channels_last"].append(res["channels_last"])
        fmt = max(("nchw", "channels_last"), key=lambda f: statistics.median(runs[f]))
        other = "nchw" if fmt == "channels_last" else "channels_last"
        rows.append((os.path.basename(exp), runs["runner"], runs[fmt], fmt, runs["notebook"], other, runs[other]))
    caps = "oneDNN and ATen capped at AVX2, runner's norm kernels AVX2" if a.isa == "avx2" else "no ISA caps"
    print(f"torch {torch.__version__}; batch {a.batch}, {a.threads} threads, {a.steps} timed steps after {a.warmup} "
          f"warm-up, median of {a.repeat} interleaved rounds (min-max); training images/s; {caps}; peers with the "
          f"runner's allocator settings ({tunables})")
    print("| experiment | runner | peer (b) tuned | peer (a) notebook | runner / (b) | runner / (a) |")
    print("|---|---:|---:|---:|---:|---:|")
    med = statistics.median
    span = lambda v: f"{med(v):,.0f} ({min(v):,.0f}-{max(v):,.0f})"
    for name, r, b, fmt, n, other, o in rows:
        print(f"| {name} | {span(r)} | {span(b)} {fmt} | {span(n)} | {med(r) / med(b):.2f}x | {med(r) / med(n):.2f}x |")
    print("\npeer (b) in its slower format, for reference: " +
          ", ".join(f"{name} {other} {med(o):,.0f} (runner {med(r) / med(o):.2f}x)" for name, r, b, fmt, n, other, o in rows))


if __name__ == "__main__":
    main()
