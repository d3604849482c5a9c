#!/usr/bin/python3
"""safetensors interop between dlcl's C reader/writer (lib/io/safetensors.c) and PyTorch.

    torch_interop_st.py check FILE

Reads FILE, which test_safetensors (case st_torch_reads_dlcl_file_and_dlcl_reads_torch_file)
wrote with st_write, using the pure-Python reader below, and asserts its layout and contents
(float32 tensors and int64 ones). Then writes FILE.torch.safetensors holding float32,
float16, bfloat16, float64 and int64 tensors (a batch norm's num_batches_tracked) that the C
case reads back and checks. The format is implemented here with struct, json and
torch.frombuffer: the `safetensors` pip package is not needed (Debian does not ship it).

Exit status: 0 when everything matches, 1 on a mismatch (the reason on stderr),
77 when torch cannot be imported (the C case then skips).
"""
import json
import struct
import sys

try:
    import torch
except ImportError as e:  # the C case reports this as a skip
    print(f"torch not importable: {e}", file=sys.stderr)
    sys.exit(77)

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
          "I64": torch.int64}
NAMES = {v: k for k, v in DTYPES.items()}


def fail(msg):
    print(f"torch_interop_st: {msg}", file=sys.stderr)
    sys.exit(1)


def st_read(path):
    """Returns (tensors, metadata, header_len, header_text, order of names in the data blob)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        fail(f"{path}: {len(data)} bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        fail(f"{path}: header length {n} beyond the file")
    text = data[8:8 + n].decode("utf-8")
    header = json.loads(text)
    blob = data[8 + n:]
    meta = header.pop("__metadata__", {})
    tensors, spans = {}, []
    for name, e in header.items():
        b, end = e["data_offsets"]
        dt = DTYPES[e["dtype"]]
        raw = bytearray(blob[b:end])
        t = torch.frombuffer(raw, dtype=dt) if raw else torch.empty(0, dtype=dt)
        tensors[name] = t.reshape(e["shape"]).clone()
        spans.append((b, end, name))
    spans.sort()
    at = 0
    for b, end, name in spans:
        if b != at:
            fail(f"{path}: tensor {name} starts at {b}, expected {at}")
        at = end
    if at != len(blob):
        fail(f"{path}: tensors cover {at} of {len(blob)} data bytes")
    return tensors, meta, n, text, [s[2] for s in spans]


def tensor_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: move the bits as int16
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    return t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()


def st_write(path, tensors, metadata):
    """Writes like the safetensors package: data sorted by dtype size (largest first) then
    name, header padded with spaces to a multiple of 8."""
    order = sorted(tensors, key=lambda k: (-tensors[k].element_size(), k))
    header, blobs, off = {"__metadata__": metadata}, [], 0
    for name in order:
        t = tensors[name]
        b = tensor_bytes(t)
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def check(path):
    tensors, meta, n, text, blob_order = st_read(path)
    if n % 8 != 0:
        fail(f"header length {n} is not a multiple of 8")
    if text.rstrip(" ") != text.strip() or not text.startswith("{"):
        fail(f"header is padded with something other than trailing spaces: {text!r}")
    want_meta = {"format": "pt", "note": 'dlcl "quoted" \u00b5'}
    if meta != want_meta:
        fail(f"metadata {meta!r}, want {want_meta!r}")
    want = {
        "arange": torch.arange(30, dtype=torch.float32).reshape(2, 3, 5) * 0.5 - 3,
        "neg_bias": -torch.arange(7, dtype=torch.float32) * 0.25,
        "scalar": torch.tensor(42.0),
        "empty": torch.empty(0, 4),
        "bn.num_batches_tracked": torch.tensor(7, dtype=torch.int64),
        "index": torch.tensor([-1, 2 ** 40, -2 ** 63], dtype=torch.int64),
    }
    if list(tensors) != list(want):
        fail(f"tensor names {list(tensors)}, want {list(want)} in this order")
    if [n for n in blob_order if tensors[n].numel()] != [n for n in want if want[n].numel()]:
        fail(f"data blob order {blob_order}: st_write must keep the given order")
    for name, w in want.items():
        t = tensors[name]
        if t.dtype != w.dtype or t.shape != w.shape or not torch.equal(t, w):
            fail(f"{name}: got {t.dtype} {tuple(t.shape)} {t.flatten()[:8].tolist()}, want {tuple(w.shape)} "
                 f"{w.flatten()[:8].tolist()}")

    # What a PyTorch user saves: several dtypes, and the C tensor transformed by torch.
    out = {
        "f32.weight": torch.arange(24, dtype=torch.float32).reshape(2, 3, 4) / 8 - 1,
        "f16.weight": torch.tensor([1 / 3, -65504.0, 2.0 ** -24, 0.5, -0.0, 1000.0], dtype=torch.float16).reshape(2, 3),
        "bf16.bias": torch.tensor([1.0, -3.140625, 2.0 ** -100, 65536.0], dtype=torch.bfloat16),
        "f64.running_mean": torch.tensor([0.1, -2.5, 1e-3], dtype=torch.float64),
        "arange.doubled": (tensors["arange"] * 2).to(torch.float16),
        "bn.num_batches_tracked": torch.tensor(12345678901, dtype=torch.int64),
        "index.copy": tensors["index"] * 1,
    }
    st_write(path + ".torch.safetensors", out, {"writer": "torch", "torch_version": str(torch.__version__)})
    # read our own output back: the file is well-formed by this reader's rules too
    back, _, _, _, _ = st_read(path + ".torch.safetensors")
    for name, t in out.items():
        if not torch.equal(back[name], t):
            fail(f"{name}: Python round trip differs")


def main():
    if len(sys.argv) != 3 or sys.argv[1] != "check":
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    check(sys.argv[2])


if __name__ == "__main__":
    main()
