#!/usr/bin/env python3
"""PyTorch eager on the GPU, the reference of issue 6 point 5: seconds per training epoch of an experiment's
network (built as bench.py's peers build it), all 50,000 images on the device, batched crop and flip there,
SGD with momentum, batch 128. The first epoch warms up (cuDNN picks its kernels); the others are timed, each
ended by a synchronize. Usage: peer_eager.py EXP --root CIFAR_DIR [--epochs 3] [--device cuda]
"""
import argparse, json, os, sys, time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bench import MEAN, STD, build, load_cifar  # noqa: E402
import yaml  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment")
    ap.add_argument("--root", required=True)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--device", default="cuda")
    a = ap.parse_args()
    dev = torch.device(a.device)
    images, labels = (t.to(dev) for t in load_cifar(a.root, None))
    mean, std = MEAN.to(dev), STD.to(dev)
    model = yaml.safe_load(open(a.experiment))["model"]
    torch.manual_seed(1)
    net = nn.Sequential(build(model["layers"], model, 3, 32)[0], nn.Flatten()).to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    n = labels.numel()
    seconds = []
    for epoch in range(a.epochs):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        order = torch.randperm(n, device=dev)
        for begin in range(0, n, a.batch):
            idx = order[begin:begin + a.batch]
            x = (images[idx].float() / 255 - mean) / std
            m = x.shape[0]
            x = F.pad(x, (4, 4, 4, 4))
            dy = torch.randint(0, 9, (m,), device=dev)
            dx = torch.randint(0, 9, (m,), device=dev)
            # one crop offset per image, as the runner draws them
            x = x.unfold(2, 32, 1).unfold(3, 32, 1)[torch.arange(m, device=dev), :, dy, dx]
            flip = torch.rand(m, device=dev) < 0.5
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(x), labels[idx]).backward()
            opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"peer": "pytorch eager", "torch": torch.__version__, "device": str(dev),
                      "gpu": torch.cuda.get_device_name() if dev.type == "cuda" else "",
                      "seconds_per_epoch": seconds, "timed_mean": sum(seconds[1:]) / max(len(seconds) - 1, 1)}))


if __name__ == "__main__":
    main()
