#!/usr/bin/env python3
"""Writes a CIFAR-10 stand-in in the canonical binary layout: random pixels, labels 0-9.

The GPU machine cannot download and the real set (163 MB) is over what the device tool carries; speed does
not depend on the pixels. Usage: fake_cifar.py DIR  ->  DIR/cifar-10-batches-bin/
"""
import os, sys

import numpy as np


def main():
    out = os.path.join(sys.argv[1], "cifar-10-batches-bin")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        rows = rng.integers(0, 256, size=(10000, 3073), dtype=np.uint8)
        rows[:, 0] = rng.integers(0, 10, size=10000, dtype=np.uint8)
        rows.tofile(os.path.join(out, name))
    with open(os.path.join(out, "batches.meta.txt"), "w") as f:
        f.write("\n".join(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]) + "\n")
    print(out)


if __name__ == "__main__":
    main()
