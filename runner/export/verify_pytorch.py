"""Runs a `runner export --format pytorch` folder with Python's PyTorch on float32
input; writes the logits as float32. Used by `runner export --verify` and the
tests; prints the runtime's name and version.
    python3 verify_pytorch.py DIR INPUT.f32 N C H W LOGITS.f32
"""
import importlib.util
import sys

import numpy as np
import torch


def main():
    folder, input_path, n, c, h, w, out_path = sys.argv[1:8]
    shape = tuple(int(v) for v in (n, c, h, w))
    spec = importlib.util.spec_from_file_location("exported_model", folder + "/model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.Net()
    net.load_state_dict(torch.load(folder + "/weights.pt"))  # strict: every key, every shape
    net.eval()
    # Channels-last, as the runner evaluates on the CPU.
    net = net.to(memory_format=torch.channels_last)
    x = torch.from_numpy(np.fromfile(input_path, dtype=np.float32).reshape(shape))
    x = x.contiguous(memory_format=torch.channels_last)

    def logits_of():
        with torch.no_grad():
            return torch.cat([net(x[i:i + 500]) for i in range(0, shape[0], 500)])

    # Debian 13's PyTorch 2.6 with the system oneDNN 3.7.2 computes some convolutions wrong
    # (channel counts not multiples of 16, AVX-512; docs/platforms.md): where oneDNN and
    # PyTorch's own kernels disagree, the export is verified with PyTorch's own, and said so.
    logits = logits_of()
    note = ""
    if torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled:
        with torch.backends.mkldnn.flags(enabled=False):
            native = logits_of()
        scale = max(native.abs().max().item(), 1e-12)
        differs = not torch.isfinite(logits).all() or (logits - native).abs().max().item() / scale > 1e-2
        if torch.isfinite(native).all() and differs:
            logits = native
            note = (", oneDNN off: this PyTorch's oneDNN computed this model wrong "
                    "(torch.backends.mkldnn.enabled = False avoids it)")
    logits.numpy().astype(np.float32).tofile(out_path)
    print(f"PyTorch {torch.__version__}{note}")


if __name__ == "__main__":
    main()
