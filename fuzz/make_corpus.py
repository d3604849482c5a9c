#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/TARGET/): small valid inputs of
every kind each parser accepts, so that mutations start from deep inside the formats.
Rerun after changing a format: /usr/bin/python3 fuzz/make_corpus.py"""
import gzip
import json
import os
import shutil
import struct
import zlib

ROOT = os.path.dirname(os.path.abspath(__file__))
C = os.path.join(ROOT, "corpus")


def out(target, name, data):
    os.makedirs(os.path.join(C, target), exist_ok=True)
    with open(os.path.join(C, target, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# ---- config: the examples and a few shapes of INI
os.makedirs(os.path.join(C, "config"), exist_ok=True)
for ex in ("fashion_mlp.ini", "fashion_lenet.ini", "fashion_vgg.ini"):
    shutil.copy(os.path.join(ROOT, "..", "examples", ex), os.path.join(C, "config", ex))
out("config", "small.ini", "[net]\ninput = 3,32,32\nclasses = 10 ; inline\n# comment\n\n[c]\ntype=conv\n"
    "filters=8\n  size = 3\nactivation = leaky\nslope = 0.1\n[d]\ntype = dropout\nrate = 0.5\n")
out("config", "lists.ini", "[a]\nk = 1,2,3,4\nb = yes\nf = -1.5e3\ns = text with spaces\n[b]\nx=\n")
# templates: [vars], nested [for] ... [end], `if`, ${...} in names, values and bounds
out("config", "template_resnet.ini", """[vars]
blocks = 3, 4, 6, 3
width = 64, 128, 256, 512
expansion = 4
base = ${width[0]}
[net]
input = 3, 32, 32
classes = 10
[stem]
type = conv
filters = ${base}
size = 3
[for s in 1..len(blocks)]
[for b in 0..${blocks[s-1]} - 1]
[layer${s}.${b}.conv1]
type = conv
filters = ${width[s-1]}
stride = ${b == 0 && s > 1 ? 2 : 1}
[layer${s}.${b}.downsample.0]
if = ${b == 0}
type = conv
filters = ${width[s-1] * expansion}
input = layer${s}.${b}.conv1
[end]
[end]
[fc]
type = dense
units = ${len(width) * 0 + 10}
""")
out("config", "template_gpt.ini", """[vars]
n_layer = 2
n_embd = 48
n_head = 3
head = ${n_embd // n_head}
names = wte, wpe
act = gelu
[wte]
units = ${n_embd}
[for i in 0..n_layer - 1]
[h.${i}.ln_1]
type = layernorm
[h.${i}.attn.c_attn]
units = ${3 * n_embd}
heads = ${n_head}
[h.${i}.mlp.c_fc]
units = ${4 * n_embd}
activation = ${act}
[h.${i}.mlp.c_proj]
units = ${n_embd}
input = h.${i}.mlp.c_fc
[end]
[ln_f]
if = ${n_layer > 0}
type = ${names[1]}
""")
out("config", "template_exprs.ini", """[vars]
a = 7
b = -2.5e1
l = 1, 2, 3
t = text, 4
p = /a/b:c
e =
[x]
v = ${a / 2} ${a // 2} ${-a // 2} ${a % 3} ${-a % 3} ${a % -3} ${1 / 3} ${b * 4}
w = ${!0 || 0 && 1} ${(a >= 7) != (a < 7)} ${a == 7 ? l[2] : t[0]} ${-(-(-a))}
y = ${len(l)} ${len(e)} ${l} ${t[1] + 1} ${p} ${ a ? a ? 1 : 2 : 3 } ${l[len(l) - 1]}
[for i in -1..1]
[for j in i..i + 1]
[c${i}_${j}]
if = i != j
k = ${i * 10 + j}
[end]
[end]
[for z in 3..2]
[never]
[end]
""")

# ---- idx: first byte 1 fuzzes the images file, 0 the labels file
img = bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3]) + bytes(range(18))
lab = bytes([0, 0, 8, 1, 0, 0, 0, 2, 1, 7])
out("idx", "images.idx", b"\x01" + img)
out("idx", "labels.idx", b"\x00" + lab)
out("idx", "images.idx.gz", b"\x01" + gzip.compress(img, mtime=0))
out("idx", "labels.idx.gz", b"\x00" + gzip.compress(lab, mtime=0))


# ---- safetensors: every dtype the reader widens, int64, metadata, a 0-d and an empty tensor
def st(tensors, meta=None):
    hdr, blob = {}, b""
    for name, dtype, shape, data in tensors:
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    if meta:
        hdr["__metadata__"] = meta
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob


out("safetensors", "f32.safetensors", st([("fc.weight", "F32", [2, 3], struct.pack("<6f", *range(6))),
                                          ("fc.bias", "F32", [2], struct.pack("<2f", 0.5, -0.5))],
                                         {"format": "pt", "step": "12"}))
out("safetensors", "widen.safetensors", st([("h", "F16", [2, 2], struct.pack("<4e", 1, -2, 0.5, 65504)),
                                            ("b", "BF16", [3], bytes([0x80, 0x3f, 0, 0xc0, 0x49, 0x40])),
                                            ("d", "F64", [2], struct.pack("<2d", 3.25, -1e-300))]))
out("safetensors", "scalar_empty.safetensors", st([("s", "F32", [], struct.pack("<f", 7)),
                                                   ("e", "F32", [0, 4], b"")]))
out("safetensors", "batchnorm_i64.safetensors", st([("bn.num_batches_tracked", "I64", [], struct.pack("<q", 300)),
                                                    ("bn.running_mean", "F32", [2], struct.pack("<2f", 0.1, -2)),
                                                    ("steps", "I64", [2], struct.pack("<2q", -1, 2 ** 62))]))


# ---- images: PNG (gray, RGB, RGBA, 16-bit), BMP, PGM, PPM
def png(w, h, color, depth, rows):
    raw = b"".join(b"\x00" + r for r in rows)
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


out("image", "gray.png", png(5, 4, 0, 8, [bytes((x * 50 + y) % 256 for x in range(5)) for y in range(4)]))
out("image", "rgb.png", png(3, 3, 2, 8, [bytes((x * 40 + y * 7 + c) % 256 for x in range(3) for c in range(3))
                                         for y in range(3)]))
out("image", "rgba.png", png(2, 2, 6, 8, [bytes([255, 0, 0, 128, 0, 255, 0, 255])] * 2))
out("image", "gray16.png", png(2, 2, 0, 16, [bytes([0x12, 0x34, 0xff, 0xff])] * 2))
w, h = 3, 2
row = bytes([10, 20, 30] * w) + b"\x00" * (-(3 * w) % 4)
bmp_px = row * h
out("image", "rgb.bmp", b"BM" + struct.pack("<IHHI", 54 + len(bmp_px), 0, 0, 54)
    + struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(bmp_px), 2835, 2835, 0, 0) + bmp_px)
out("image", "gray.pgm", b"P5\n4 3\n255\n" + bytes(range(0, 240, 20)))
out("image", "rgb.ppm", b"P6\n2 2\n255\n" + bytes(range(12)))
