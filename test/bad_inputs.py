#!/usr/bin/python3
"""Malformed inputs against the tools, reported in TAP: configs, IDX data files, safetensors
checkpoints and images. Each row of the table builds its files, runs one tool, and expects a
non-zero exit without a signal, within a time bound, and stderr naming the expected dlcl
status and matching a message pattern (the file, line or tensor at fault).
Usage: bad_inputs.py TOOLS_DIR"""
import gzip
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib

TOOLS = sys.argv[1]
TIME_LIMIT = 30  # seconds per case; each should take well under one
tmp = tempfile.mkdtemp(prefix="dlcl-bad-")


def path(name):
    return os.path.join(tmp, name)


def write(name, data):
    """A file (bytes or str), or an empty directory (None); parent directories are made."""
    os.makedirs(os.path.dirname(path(name)), exist_ok=True)
    if data is None:
        os.makedirs(path(name), exist_ok=True)
        return path(name)
    with open(path(name), "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    return path(name)


def idx(dims, payload=None, dtype=0x08, magic=b"\x00\x00"):
    n = 1
    for d in dims:
        n *= d
    body = payload if payload is not None else bytes((i * 7) % 10 for i in range(n))
    return magic + bytes([dtype, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + body


def png(w, h, pixels=None, truncate=None):
    raw = b"".join(b"\x00" + bytes(pixels or [128] * w) for _ in range(h)) if pixels is not False else b""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return data[:truncate] if truncate else data


def safetensors(tensors, meta=None, header_len=None, raw_header=None, data_extra=b""):
    """tensors: list of (name, dtype, shape, data bytes or None for zeros, offsets or None)."""
    hdr, blob = {}, b""
    for name, dtype, shape, data, offs in tensors:
        n = 4
        for d in shape:
            n *= d
        data = data if data is not None else bytes(n)
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": offs or [len(blob), len(blob) + len(data)]}
        blob += data
    if meta:
        hdr["__metadata__"] = meta
    h = raw_header if raw_header is not None else json.dumps(hdr).encode()
    return struct.pack("<Q", header_len if header_len is not None else len(h)) + h + blob + data_extra


# A good data set of 64 28x28 images and a one-layer net, which the cases then break.
GOOD_IMAGES = idx([64, 28, 28])
GOOD_LABELS = idx([64], bytes(i % 10 for i in range(64)))
for name in ("tr-img", "te-img"):
    write(name, GOOD_IMAGES)
for name in ("tr-lab", "te-lab"):
    write(name, GOOD_LABELS)


def config(net="", layers=None, data=None, optimizer=""):
    d = {"train_images": path("tr-img"), "train_labels": path("tr-lab"), "test_images": path("te-img"),
         "test_labels": path("te-lab")}
    d.update(data or {})
    text = "[net]\ninput = 1,28,28\nclasses = 10\nbatch = 16\nepochs = 1\n" + net
    text += "\n[optimizer]\ntype = sgd\nlearning_rate = 0.01\n" + optimizer
    text += "\n[data]\nformat = idx\n" + "".join(f"{k} = {v}\n" for k, v in d.items())
    text += layers if layers is not None else "\n[fc1]\ntype = dense\nunits = 10\n"
    return text


def device_memory():
    """(global memory, largest buffer) in bytes of the device the tools pick, from dlcl-devices."""
    out = subprocess.run([os.path.join(TOOLS, "dlcl-devices")], capture_output=True, text=True).stdout
    m = re.search(r"^\* .*\n.*\n\s*global memory ([0-9.]+) MiB \(largest buffer ([0-9.]+) MiB\)", out, re.M)
    if not m:
        sys.exit("bad_inputs.py: cannot read the device's memory from dlcl-devices:\n" + out)
    return float(m.group(1)) * 2**20, float(m.group(2)) * 2**20


# Nets too large for the device at hand (batch 16): one conv whose output (16 x 16 x side^2
# floats) is twice the largest buffer, and a stack of convs (16 x 4 x side^2 floats each, half
# the largest buffer) that together need twice the device's memory.
GLOBAL_BYTES, LARGEST_BYTES = device_memory()
BIG_SIDE = max(2900, math.ceil(math.sqrt(2 * LARGEST_BYTES / (16 * 16 * 4))))
MANY_SIDE = max(2048, math.ceil(math.sqrt(LARGEST_BYTES / 2 / (16 * 4 * 4))))
MANY_LAYERS = max(12, math.ceil(2 * GLOBAL_BYTES / (16 * 4 * 4 * MANY_SIDE**2)))

GOOD_CFG = write("good.ini", config())


def cifar(labels, cut=0):
    """CIFAR-10 records with these labels, the last `cut` bytes cut off."""
    data = b"".join(bytes([l]) + bytes((i * 7 + j) % 256 for j in range(3072)) for i, l in enumerate(labels))
    return data[:len(data) - cut]


def data_config(data, net="input = 3,8,8\nclasses = 3\n", units=3):
    """A one-layer net over a [data] section of another format (paths relative to the config)."""
    return (f"[net]\n{net}batch = 4\nepochs = 1\n[optimizer]\ntype = sgd\nlearning_rate = 0.01\n[data]\n{data}\n"
            f"[fc1]\ntype = dense\nunits = {units}\n")


CIFAR_CFG = data_config("format = cifar\ntrain = b.bin\ntest = b.bin", "input = 3,32,32\nclasses = 10\n", 10)
FOLDER_CFG = data_config("format = folder\ntrain = img\ntest = img")
TWO_CLASSES = {"img/cat/1.png": png(8, 8), "img/dog/1.png": png(8, 8)}
W = ("fc1.weight", "F32", [10, 784], None, None)
B = ("fc1.bias", "F32", [10], None, None)

def tokens(count, toks, magic=20240520, version=1):
    """An llm.c token file: the header of 256 int32, then uint16 tokens."""
    return struct.pack("<3i", magic, version, count) + bytes(1012) + struct.pack(f"<{len(toks)}H", *toks)


# a token net: an embedding of a vocabulary of 50 over a context of 8, a head per position
TOKEN_CFG = ("[net]\ninput = 8\nclasses = 50\nbatch = 2\nepochs = 1\n[data]\nformat = tokens\ntrain = t.bin\n"
             "test = t.bin\n[e]\ntype = embedding\nvocab = 50\ndim = 4\n[o]\ntype = dense\nunits = 50\n")
GOOD_TOKENS = tokens(40, [i % 50 for i in range(40)])

# (name, files {name: bytes|str}, tool, args (files by name as {name}), status, message pattern)
CASES = [
    # ---- configs (dlcl-train)
    ("config_missing_file", {}, "dlcl-train", ["{nope.ini}"], "DLCL_ERR_NOT_FOUND", r"nope\.ini"),
    ("config_empty", {"c.ini": ""}, "dlcl-train", ["{c.ini}"], "DLCL_ERR_CONFIG", r"c\.ini.*\[net\]"),
    ("config_binary_garbage", {"c.ini": bytes(range(256)) * 8}, "dlcl-train", ["{c.ini}"], "DLCL_ERR_CONFIG", r"c\.ini:\d+"),
    ("config_line_without_equals", {"c.ini": config(net="batchsize 3\n")}, "dlcl-train", ["{c.ini}"],
     "DLCL_ERR_CONFIG", r"c\.ini:6"),
    ("config_unterminated_section", {"c.ini": "[net\ninput = 1,28,28\n"}, "dlcl-train", ["{c.ini}"],
     "DLCL_ERR_CONFIG", r"c\.ini:1"),
    ("config_key_outside_section", {"c.ini": "batch = 3\n" + config()}, "dlcl-train", ["{c.ini}"],
     "DLCL_ERR_CONFIG", r"c\.ini:1"),
    ("config_unknown_key_suggests", {"c.ini": config(layers="\n[c1]\ntype = conv\nfiltrs = 8\nsize = 3\n")},
     "dlcl-train", ["{c.ini}"], "DLCL_ERR_CONFIG", r"filtrs.*filters"),
    ("config_unknown_layer_type_suggests", {"c.ini": config(layers="\n[c1]\ntype = convv\nfilters = 8\n")},
     "dlcl-train", ["{c.ini}"], "DLCL_ERR_CONFIG", r"convv.*conv"),
    ("config_negative_filters", {"c.ini": config(layers="\n[c1]\ntype = conv\nfilters = -4\nsize = 3\n")},
     "dlcl-train", ["{c.ini}"], "DLCL_ERR_CONFIG", r"c\.ini:\d+.*filters"),
    ("config_batch_not_a_number", {"c.ini": config().replace("batch = 16", "batch = lots")}, "dlcl-train",
     ["{c.ini}"], "DLCL_ERR_CONFIG", r"c\.ini:4.*batch"),
    ("config_input_two_values", {"c.ini": config().replace("input = 1,28,28", "input = 28,28")}, "dlcl-train",
     ["{c.ini}"], "DLCL_ERR_CONFIG", r"input.*C,H,W"),
    ("config_duplicate_section", {"c.ini": config(layers="\n[fc1]\ntype = dense\nunits = 10\n[fc1]\ntype = dense\nunits = 10\n")},
     "dlcl-train", ["{c.ini}"], "DLCL_ERR_CONFIG", r"fc1"),
    ("config_kernel_larger_than_input", {"c.ini": config(layers="\n[c1]\ntype = conv\nfilters = 4\nsize = 40\n")},
     "dlcl-train", ["{c.ini}"], "DLCL_ERR_", r"c1|40"),
    ("config_pool_stride_zero", {"c.ini": config(layers="\n[p1]\ntype = maxpool\nsize = 2\nstride = 0\n")},
     "dlcl-train", ["{c.ini}"], "DLCL_ERR_CONFIG", r"stride"),
    ("config_dropout_rate_above_one", {"c.ini": config(layers="\n[d1]\ntype = dropout\nrate = 1.5\n[fc1]\ntype = dense\nunits = 10\n")},
     "dlcl-train", ["{c.ini}"], "DLCL_ERR_CONFIG", r"rate"),
    ("config_unknown_activation", {"c.ini": config(layers="\n[fc1]\ntype = dense\nunits = 10\nactivation = relux\n")},
     "dlcl-train", ["{c.ini}"], "DLCL_ERR_CONFIG", r"relux"),
    ("config_input_names_unknown_layer", {"c.ini": config(layers="\n[fc1]\ntype = dense\nunits = 10\ninput = nowhere\n")},
     "dlcl-train", ["{c.ini}"], "DLCL_ERR_CONFIG", r"nowhere"),
    ("config_unknown_optimizer", {"c.ini": config().replace("type = sgd", "type = sgdd")}, "dlcl-train",
     ["{c.ini}"], "DLCL_ERR_CONFIG", r"sgdd"),
    ("config_learning_rate_nan", {"c.ini": config().replace("learning_rate = 0.01", "learning_rate = nan")},
     "dlcl-train", ["{c.ini}"], "DLCL_ERR_CONFIG", r"learning_rate"),
    ("config_very_long_line", {"c.ini": config(net="; " + "x" * 200000 + "\n")}, "dlcl-train", ["{c.ini}"],
     "DLCL_ERR_CONFIG", r"c\.ini:6"),
    ("config_output_larger_than_device_buffer",
     {"c.ini": config(layers="\n[c1]\ntype = conv\nfilters = 16\nsize = 3\npad = 1\n[p1]\ntype = global_avgpool\n"
                             "[fc1]\ntype = dense\nunits = 10\n").replace("input = 1,28,28", f"input = 1,{BIG_SIDE},{BIG_SIDE}")},
     "dlcl-train", ["{c.ini}"], "DLCL_ERR_OUT_OF_MEMORY", r"\[c1\].*GiB"),
    ("config_net_larger_than_device_memory",
     {"c.ini": config(layers="".join(f"\n[c{i}]\ntype = conv\nfilters = 4\nsize = 3\npad = 1\n" for i in range(MANY_LAYERS))
                      + "[p1]\ntype = global_avgpool\n[fc1]\ntype = dense\nunits = 10\n")
                      .replace("input = 1,28,28", f"input = 1,{MANY_SIDE},{MANY_SIDE}")},
     "dlcl-train", ["{c.ini}"], "DLCL_ERR_OUT_OF_MEMORY", r"GiB of device memory"),
    # ---- IDX data (dlcl-train validates every data file before training)
    ("idx_missing_file", {}, "dlcl-train", ["--set", "data.train_images={nope.idx}", "{good.ini}"],
     "DLCL_ERR_NOT_FOUND", r"nope\.idx"),
    ("idx_empty_file", {"x.idx": b""}, "dlcl-train", ["--set", "data.train_images={x.idx}", "{good.ini}"],
     "DLCL_ERR_DATA", r"x\.idx"),
    ("idx_bad_magic", {"x.idx": idx([64, 28, 28], magic=b"\x01\x02")}, "dlcl-train",
     ["--set", "data.train_images={x.idx}", "{good.ini}"], "DLCL_ERR_DATA", r"x\.idx"),
    ("idx_float_type", {"x.idx": idx([64, 28, 28], dtype=0x0D)}, "dlcl-train",
     ["--set", "data.train_images={x.idx}", "{good.ini}"], "DLCL_ERR_DATA", r"x\.idx"),
    ("idx_labels_of_rank_3", {"x.idx": idx([64, 28, 28])}, "dlcl-train",
     ["--set", "data.train_labels={x.idx}", "{good.ini}"], "DLCL_ERR_DATA", r"x\.idx"),
    ("idx_huge_dims_tiny_file", {"x.idx": idx([0x7FFFFFFF, 28, 28], payload=b"\x00" * 100)}, "dlcl-train",
     ["--set", "data.train_images={x.idx}", "{good.ini}"], "DLCL_ERR_DATA", r"x\.idx"),
    ("idx_truncated_data", {"x.idx": idx([64, 28, 28])[:5000]}, "dlcl-train",
     ["--set", "data.train_images={x.idx}", "{good.ini}"], "DLCL_ERR_DATA", r"x\.idx"),
    ("idx_trailing_data", {"x.idx": idx([64, 28, 28]) + b"extra"}, "dlcl-train",
     ["--set", "data.train_images={x.idx}", "{good.ini}"], "DLCL_ERR_DATA", r"x\.idx.*more data"),
    ("idx_count_mismatch", {"x.idx": idx([63, 28, 28])}, "dlcl-train",
     ["--set", "data.train_images={x.idx}", "{good.ini}"], "DLCL_ERR_DATA", r"63"),
    ("idx_label_out_of_range", {"x.idx": idx([64], bytes([200] * 64))}, "dlcl-train",
     ["--set", "data.train_labels={x.idx}", "{good.ini}"], "DLCL_ERR_DATA", r"x\.idx.*200"),
    ("idx_image_size_differs_from_input", {"x.idx": idx([64, 32, 32])}, "dlcl-train",
     ["--set", "data.train_images={x.idx}", "{good.ini}"], "DLCL_ERR_DATA", r"x\.idx.*32"),
    ("idx_corrupt_gzip", {"x.idx.gz": gzip.compress(idx([64, 28, 28]))[:40] + b"\xff" * 64}, "dlcl-train",
     ["--set", "data.train_images={x.idx.gz}", "{good.ini}"], "DLCL_ERR_DATA", r"x\.idx\.gz"),
    # ---- CIFAR batches and image folders (dlcl-train opens both splits before training)
    ("cifar_truncated", {"c.ini": CIFAR_CFG, "b.bin": cifar([1, 2, 3], cut=5)}, "dlcl-train", ["{c.ini}"],
     "DLCL_ERR_DATA", r"b\.bin: 9214 bytes is not a whole number of 3073-byte CIFAR-10 records \(record 2 is cut short"),
    ("cifar_empty_file", {"c.ini": CIFAR_CFG, "b.bin": b""}, "dlcl-train", ["{c.ini}"], "DLCL_ERR_DATA",
     r"b\.bin: empty file"),
    ("cifar_label_out_of_range", {"c.ini": CIFAR_CFG, "b.bin": cifar([1, 10, 3])}, "dlcl-train", ["{c.ini}"],
     "DLCL_ERR_DATA", r"b\.bin: record 1 has label 10, out of range for classes=10"),
    ("cifar_classes_not_10_or_100", {"c.ini": CIFAR_CFG.replace("classes = 10", "classes = 12"), "b.bin": cifar([1])},
     "dlcl-train", ["{c.ini}"], "DLCL_ERR_CONFIG", r"c\.ini:\d+: \[data\] format=cifar .*10 or 100, not 12"),
    ("folder_missing", {"c.ini": FOLDER_CFG}, "dlcl-train", ["{c.ini}"], "DLCL_ERR_NOT_FOUND",
     r"img: cannot open directory"),
    ("folder_empty", {"c.ini": FOLDER_CFG, "img": None}, "dlcl-train", ["{c.ini}"], "DLCL_ERR_DATA",
     r"img: no class folders"),
    ("folder_class_without_images", {"c.ini": FOLDER_CFG, **TWO_CLASSES, "img/eel/notes.txt": "x"}, "dlcl-train",
     ["{c.ini}"], "DLCL_ERR_DATA", r"img/eel: class folder without images"),
    ("folder_image_not_an_image", {"c.ini": FOLDER_CFG, **TWO_CLASSES, "img/cat/2.jpg": b"GIF89a" + bytes(64)},
     "dlcl-train", ["{c.ini}"], "DLCL_ERR_DATA", r"img/cat/2\.jpg: not a PNG, JPEG or BMP image"),
    ("folder_image_header_truncated", {"c.ini": FOLDER_CFG, **TWO_CLASSES, "img/cat/2.png": png(8, 8, truncate=20)},
     "dlcl-train", ["{c.ini}"], "DLCL_ERR_DATA", r"img/cat/2\.png: unreadable header, a truncated or corrupt image"),
    # the header is sound, the pixels are not: found when the batch is decoded, named
    ("folder_image_data_truncated", {"c.ini": FOLDER_CFG, **TWO_CLASSES, "img/cat/2.png": png(8, 8, truncate=60)},
     "dlcl-train", ["{c.ini}"], "DLCL_ERR_DATA", r"img/cat/2\.png: cannot decode \(corrupt or truncated data\)"),
    ("folder_more_classes_than_net", {"c.ini": FOLDER_CFG, **TWO_CLASSES, "img/eel/1.png": png(8, 8),
                                      "img/fox/1.bmp": b"BM" + bytes(60)},
     "dlcl-train", ["{c.ini}"], "DLCL_ERR_DATA", r"img: 4 class folders \(cat \.\.\. fox\), but \[net\] classes = 3"),
    ("data_mean_list_wrong_length", {"c.ini": FOLDER_CFG, **TWO_CLASSES}, "dlcl-train",
     ["--set", "data.mean=0.5,0.5", "{c.ini}"], "DLCL_ERR_CONFIG", r"\[data\] mean = '0\.5,0\.5': 2 values, but \[net\] input has 3"),
    ("data_crop_not_the_input", {"c.ini": FOLDER_CFG, **TWO_CLASSES}, "dlcl-train", ["--set", "data.crop=6", "{c.ini}"],
     "DLCL_ERR_CONFIG", r"\[data\] crop = 6: the centre crop is the net's input, and \[net\] input is 8x8"),
    ("data_unknown_format", {"c.ini": FOLDER_CFG.replace("format = folder", "format = foldr")}, "dlcl-train",
     ["{c.ini}"], "DLCL_ERR_CONFIG", r"c\.ini:10: \[data\] format = 'foldr'.*did you mean 'folder'"),
    ("data_key_of_another_format", {"c.ini": FOLDER_CFG, **TWO_CLASSES}, "dlcl-train",
     ["--set", "data.train_images=x.idx", "{c.ini}"], "DLCL_ERR_CONFIG",
     r"\[data\] train_images is not a key of format=folder"),
    # ---- safetensors checkpoints (dlcl-eval --weights)
    ("st_empty_file", {"w.st": b""}, "dlcl-eval", ["{good.ini}", "--weights", "{w.st}"], "DLCL_ERR_CHECKPOINT", r"w\.st"),
    ("st_header_longer_than_file", {"w.st": safetensors([W, B], header_len=10**6)}, "dlcl-eval",
     ["{good.ini}", "--weights", "{w.st}"], "DLCL_ERR_CHECKPOINT", r"w\.st"),
    ("st_header_length_2_pow_63", {"w.st": safetensors([W, B], header_len=2**63)}, "dlcl-eval",
     ["{good.ini}", "--weights", "{w.st}"], "DLCL_ERR_CHECKPOINT", r"w\.st"),
    ("st_header_not_json", {"w.st": safetensors([], raw_header=b"{not json")}, "dlcl-eval",
     ["{good.ini}", "--weights", "{w.st}"], "DLCL_ERR_CHECKPOINT", r"w\.st"),
    ("st_offsets_past_end", {"w.st": safetensors([("fc1.weight", "F32", [10, 784], None, [0, 10**9]), B])},
     "dlcl-eval", ["{good.ini}", "--weights", "{w.st}"], "DLCL_ERR_CHECKPOINT", r"w\.st.*fc1\.weight"),
    ("st_size_disagrees_with_shape", {"w.st": safetensors([("fc1.weight", "F32", [10, 784], bytes(4 * 7840 - 4), None), B])},
     "dlcl-eval", ["{good.ini}", "--weights", "{w.st}"], "DLCL_ERR_CHECKPOINT", r"fc1\.weight"),
    ("st_dtype_int64", {"w.st": safetensors([("fc1.weight", "I64", [10, 784], bytes(8 * 7840), None), B])},
     "dlcl-eval", ["{good.ini}", "--weights", "{w.st}"], "DLCL_ERR_CHECKPOINT", r"fc1\.weight.*I64"),
    ("st_shape_mismatch", {"w.st": safetensors([("fc1.weight", "F32", [12, 784], None, None), B])}, "dlcl-eval",
     ["{good.ini}", "--weights", "{w.st}"], "DLCL_ERR_CHECKPOINT", r"fc1\.weight.*\[12,784\]"),
    ("st_missing_tensor", {"w.st": safetensors([W])}, "dlcl-eval", ["{good.ini}", "--weights", "{w.st}"],
     "DLCL_ERR_CHECKPOINT", r"fc1\.bias.*missing"),
    ("st_extra_tensor", {"w.st": safetensors([W, B, ("fc9.weight", "F32", [2], None, None)])}, "dlcl-eval",
     ["{good.ini}", "--weights", "{w.st}"], "DLCL_ERR_CHECKPOINT", r"fc9\.weight"),
    ("st_negative_dimension", {"w.st": safetensors([("fc1.weight", "F32", [-10, 784], bytes(0), [0, 0]), B])},
     "dlcl-eval", ["{good.ini}", "--weights", "{w.st}"], "DLCL_ERR_CHECKPOINT", r"fc1\.weight"),
    # ---- images (dlcl-predict)
    ("image_missing_file", {"w.st": safetensors([W, B])}, "dlcl-predict",
     ["{good.ini}", "--weights", "{w.st}", "{nope.png}"], "DLCL_ERR_NOT_FOUND", r"nope\.png"),
    ("image_empty_file", {"w.st": safetensors([W, B]), "i.png": b""}, "dlcl-predict",
     ["{good.ini}", "--weights", "{w.st}", "{i.png}"], "DLCL_ERR_DATA", r"i\.png"),
    ("image_not_an_image", {"w.st": safetensors([W, B]), "i.png": b"hello, not an image\n" * 10}, "dlcl-predict",
     ["{good.ini}", "--weights", "{w.st}", "{i.png}"], "DLCL_ERR_DATA", r"i\.png"),
    ("image_truncated_png", {"w.st": safetensors([W, B]), "i.png": png(28, 28, truncate=60)}, "dlcl-predict",
     ["{good.ini}", "--weights", "{w.st}", "{i.png}"], "DLCL_ERR_DATA", r"i\.png"),
    ("image_beyond_pixel_limit", {"w.st": safetensors([W, B]), "i.png": png(20000, 20000, pixels=False)},
     "dlcl-predict", ["{good.ini}", "--weights", "{w.st}", "{i.png}"], "DLCL_ERR_DATA", r"i\.png.*limit"),
    # found by fuzz/fuzz_image: stb_image's PNM integer parser overflows int on long digit runs
    ("image_pnm_header_overflow", {"w.st": safetensors([W, B]), "i.pgm": b"P5\t" + b"2" * 82 + b"8 3\xc8"},
     "dlcl-predict", ["{good.ini}", "--weights", "{w.st}", "{i.pgm}"], "DLCL_ERR_DATA", r"i\.pgm.*9 digits"),
    ("image_is_a_directory", {"w.st": safetensors([W, B])}, "dlcl-predict",
     ["{good.ini}", "--weights", "{w.st}", "{.}"], "DLCL_ERR_DATA", r"not a regular file"),
    # ---- token data and generation (step 6)
    ("tokens_bad_magic", {"c.ini": TOKEN_CFG, "t.bin": tokens(40, [1] * 40, magic=1234)}, "dlcl-train", ["{c.ini}"],
     "DLCL_ERR_DATA", r"t\.bin: magic 1234 is not an llm\.c token file's"),
    ("tokens_count_beyond_file", {"c.ini": TOKEN_CFG, "t.bin": tokens(400, [1] * 40)}, "dlcl-train", ["{c.ini}"],
     "DLCL_ERR_DATA", r"t\.bin: the header says 400 tokens .* but the file has 1104 bytes"),
    ("tokens_beyond_vocabulary", {"c.ini": TOKEN_CFG, "t.bin": tokens(40, [3] * 17 + [50] + [3] * 22)}, "dlcl-train",
     ["{c.ini}"], "DLCL_ERR_DATA", r"t\.bin: token 17 is 50, outside the vocabulary of \[net\] classes = 50"),
    ("tokens_fewer_than_a_window", {"c.ini": TOKEN_CFG, "t.bin": tokens(5, [1] * 5)}, "dlcl-train", ["{c.ini}"],
     "DLCL_ERR_DATA", r"5 tokens, fewer than one window of \[net\] input = 8"),
    ("text_with_another_vocabulary", {"c.ini": TOKEN_CFG.replace("format = tokens", "format = text"),
                                      "t.bin": "hello world, more than eight bytes"}, "dlcl-train", ["{c.ini}"],
     "DLCL_ERR_CONFIG", r"format=text reads bytes: \[net\] classes must be 256"),
    ("tokens_for_an_image_net", {"c.ini": data_config("format = tokens\ntrain = t.bin\ntest = t.bin"),
                                 "t.bin": GOOD_TOKENS}, "dlcl-train", ["{c.ini}"],
     "DLCL_ERR_CONFIG", r"format=tokens feeds token ids, but no embedding layer reads the net's input"),
    ("context_beyond_position_embedding", {"c.ini": TOKEN_CFG.replace("[o]", "[p]\ntype = position_embedding\n"
                                                                      "context = 4\ndim = 4\n[o]"),
                                           "t.bin": GOOD_TOKENS}, "dlcl-train", ["{c.ini}"],
     "DLCL_ERR_SHAPE", r"c\.ini:\d+: .*\[p\] \(position_embedding\): e has 8 positions, more than context = 4"),
    ("generate_prompt_token_beyond_vocabulary", {"c.ini": TOKEN_CFG, "t.bin": GOOD_TOKENS, "w.safetensors":
                                                 safetensors([("e.weight", "F32", [50, 4], None, None),
                                                              ("o.weight", "F32", [50, 4], None, None),
                                                              ("o.bias", "F32", [50], None, None)])},
     "dlcl-generate", ["{c.ini}", "--weights", "{w.safetensors}", "--prompt-tokens", "3,50"],
     "DLCL_ERR_INVALID_ARG", r"token 50 at position 1 is outside 0\.\.49"),
]

print(f"1..{len(CASES)}", flush=True)
failed = 0
for n, (name, files, tool, args, status, pattern) in enumerate(CASES, 1):
    for f, data in files.items():
        write(f, data)
    argv = [f"{TOOLS}/{tool}"] + [re.sub(r"\{([^}]+)\}", lambda m: path(m.group(1)), a) for a in args]
    t0 = time.time()
    try:
        p = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=TIME_LIMIT)
        rc, err = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired:
        rc, err = None, f"no exit within {TIME_LIMIT} s"
    secs = time.time() - t0
    # in a sanitizer build (README: Sanitizers) a leak or overflow on the error path fails the case
    ok = (rc is not None and rc > 0 and status in err and re.search(pattern, err, re.S) is not None
          and "Sanitizer" not in err and "runtime error:" not in err)
    if not ok:
        failed += 1
        print(f"# {' '.join(argv)}\n# exit {rc} after {secs:.1f}s; want status {status}, message /{pattern}/")
        for line in err.splitlines()[-8:]:
            print("# " + line[:300])
    print(f"{'ok' if ok else 'not ok'} {n} - {name}", flush=True)
    if ok:  # the message a user gets, for the log
        print("#   " + next(line for line in err.splitlines() if status in line)[:300] + f" ({secs:.2f} s)")
    for top in {f.split("/")[0] for f in files}:
        shutil.rmtree(path(top)) if os.path.isdir(path(top)) else os.remove(path(top))
shutil.rmtree(tmp, ignore_errors=True)
sys.exit(1 if failed else 0)
