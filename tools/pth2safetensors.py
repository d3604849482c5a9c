#!/usr/bin/python3
"""Convert PyTorch checkpoints to safetensors for dlcl, and back.

    pth2safetensors.py IN.pth OUT.safetensors     a state_dict (or a model, or a dict holding
                                                  "state_dict" / "model") to safetensors
    pth2safetensors.py --to-pth IN.safetensors OUT.pth
                                                  a dlcl checkpoint to a state_dict file that
                                                  torch.load + load_state_dict(strict=True) take

Names and layouts are kept as they are: dlcl's configs use PyTorch's module names
(examples/resnet18.ini's sections are torchvision's `conv1`, `layer1.0.bn1`, ...), so a
torchvision state_dict loads with dlcl_net_load unchanged. float32 stays float32; float16,
bfloat16 and float64 are written as they are (dlcl widens them to float32 when it reads);
int64 tensors (batch norm's num_batches_tracked) stay int64.

The safetensors format is written with struct and json (an 8-byte little-endian header
length, a JSON header with dtype, shape and data_offsets per tensor, then the data), so
the `safetensors` package is not needed; Debian does not ship it. No network access: a
torchvision model is made with random weights (torchvision.models.resnet18()) and saved with
torch.save(model.state_dict(), "resnet18.pth") before converting.
"""
import json
import os
import struct
import sys

import torch

DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
          torch.int64: "I64", torch.int32: "I32"}
TORCH = {v: k for k, v in DTYPES.items()}


def save_safetensors(tensors, path, metadata=None):
    """Writes {name: tensor} (contiguous, CPU) to path atomically, names in sorted order."""
    header, blobs, at = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype not in DTYPES:
            raise ValueError(f"tensor {name}: dtype {t.dtype} has no safetensors name here")
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [at, at + len(raw)]}
        blobs.append(raw)
        at += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # data starts 8-byte aligned
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_safetensors(path):
    """Returns ({name: tensor}, metadata) from a safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    blob = data[8 + n:]
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        dt = TORCH[e["dtype"]]
        raw = bytearray(blob[b:end])
        t = torch.frombuffer(raw, dtype=dt) if raw else torch.empty(0, dtype=dt)
        out[name] = t.reshape(e["shape"]).clone()
    return out, meta


def state_dict_of(obj):
    """A state_dict from what torch.load returned: a state_dict, a model, or a training
    checkpoint dict holding one under "state_dict" or "model"."""
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if key in obj and isinstance(obj[key], (dict, torch.nn.Module)):
                return state_dict_of(obj[key])
        if all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    raise ValueError("not a state_dict, a model, or a checkpoint holding one under 'state_dict' or 'model'")


def main(argv):
    if len(argv) == 4 and argv[1] == "--to-pth":
        tensors, _ = load_safetensors(argv[2])
        torch.save(tensors, argv[3])
        print(f"{argv[3]}: {len(tensors)} tensors")
        return 0
    if len(argv) != 3 or argv[1].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    sd = state_dict_of(torch.load(argv[1], map_location="cpu"))
    sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}  # DataParallel's prefix
    save_safetensors(sd, argv[2], {"format": "pt", "producer": "dlcl pth2safetensors.py"})
    print(f"{argv[2]}: {len(sd)} tensors, {sum(t.numel() for t in sd.values())} values")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
