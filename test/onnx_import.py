#!/usr/bin/python3
"""ONNX import, reported in TAP. Models exported by torch.onnx.export (random weights; nothing
is downloaded) run in dlcl and give torch's outputs within 1e-4 of their scale:
- torchvision's ResNet-18 (opset 13, batch norm folded into the convs by the exporter)
  through a config that names it ([net] model = ...) and dlcl-eval's logits;
- small nets that together use every imported operator (opset 13 and 17, exported without
  constant folding so BatchNormalization and the Shape/Gather/Unsqueeze/Concat chain of
  x.view(x.size(0), -1) stay), through test/onnx_run (a bare .onnx path);
- `dlcl-predict resnet18.onnx img.png` without a config, and dlcl-train fine-tuning an
  imported model and saving safetensors with its names;
- malformed models (truncated, a wrong tensor type, a missing initializer, a cycle, an
  unsupported operator, a dynamic shape, an old opset) give errors naming what is wrong.

Usage: onnx_import.py TOOLS_DIR ONNX_RUN"""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import onnx
    import onnx.helper as oh
    import torch
    import torch.nn as nn
    import torchvision
except ImportError as e:  # not a failure of dlcl
    print("1..0 # SKIP torch, torchvision or onnx not importable: %s" % e)
    sys.exit(0)

TOOLS, ONNX_RUN = sys.argv[1], sys.argv[2]
tmp = tempfile.mkdtemp(prefix="dlcl-onnx-")
ENV = dict(os.environ, DLCL_AUTOTUNE="0")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tap  # noqa: E402
from tap import report  # noqa: E402
from torch_models import resnet18_perturbed  # noqa: E402


def run(args):
    p = subprocess.run(args, capture_output=True, text=True, env=ENV)
    return p.returncode, p.stdout[-3000:] + p.stderr[-3000:]


def export(model, x, name, opset, fold=True):
    path = f"{tmp}/{name}.onnx"
    model.eval()
    # unfolded: also PRESERVE (the model is in eval mode), else the exporter fuses batch norm into the conv
    mode = torch.onnx.TrainingMode.EVAL if fold else torch.onnx.TrainingMode.PRESERVE
    torch.onnx.export(model, x, path, opset_version=opset, do_constant_folding=fold, training=mode,
                      input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    return path


def close(got, want):
    err, scale = float(np.abs(got - want).max()), float(np.abs(want).max())
    return err <= 1e-4 * scale, f"max |dlcl - torch| = {err:.3g}, scale {scale:.3g}"


def check_model(name, model, x, opset, fold=False, softmax=False):
    """The model's torch output against dlcl's logits (or, ending in Softmax, its probabilities)."""
    path = export(model, x, name, opset, fold)
    with torch.no_grad():
        want = model(x).numpy()
    xin, lg, pr = f"{tmp}/{name}.in", f"{tmp}/{name}.logits", f"{tmp}/{name}.probs"
    x.numpy().astype(np.float32).tofile(xin)
    rc, log = run([ONNX_RUN, path, xin, str(len(x)), lg, pr])
    ok, detail = rc == 0, log
    if ok:
        got = np.fromfile(pr if softmax else lg, dtype=np.float32).reshape(want.shape)
        ok, detail = close(got, want)
        print(f"# {name}: {detail}")
    report(ok, f"{name}_opset{opset}_gives_torch_outputs", detail)
    return path


class Cnn(nn.Module):
    """Conv, BatchNormalization, Relu, MaxPool, LeakyRelu, AveragePool, Sigmoid, Resize,
    Concat, Add, Tanh, GlobalAveragePool, Reshape (x.view(n, -1)), Gemm, Dropout; Pad (empty)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, groups=2, bias=False)
        self.avg = nn.AvgPool2d(2)
        self.conv3 = nn.Conv2d(8, 4, 1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv4 = nn.Conv2d(12, 8, 3, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(8, 16)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(16, 10)
        with torch.no_grad():
            self.bn1.running_mean.uniform_(-0.2, 0.2)
            self.bn1.running_var.uniform_(0.5, 2.0)
            self.bn1.weight.uniform_(0.5, 1.5)
            self.bn1.bias.uniform_(-0.2, 0.2)

    def forward(self, x):
        a = self.pool(torch.relu(self.bn1(self.conv1(x))))          # 8x8x8
        b = nn.functional.leaky_relu(self.conv2(a), 0.2)
        c = self.up(torch.sigmoid(self.conv3(self.avg(b))))         # 4x8x8
        d = self.conv4(torch.cat([a, c], 1))
        e = torch.tanh(d + a)
        f = self.gap(e)
        f = f.view(f.size(0), -1)
        return self.fc2(self.drop(torch.relu(self.fc1(f))))


class Seq(nn.Module):
    """MatMul (+ Add as its bias) on [batch, T, D], LayerNormalization, GELU (torch's Erf
    form), Flatten, MatMul without a bias, Softmax; Transpose of the weights."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 12)
        self.ln = nn.LayerNorm(12)
        self.mix = nn.Linear(12, 6, bias=False)
        self.head = nn.Linear(36, 5, bias=False)

    def forward(self, x):
        h = self.mix(nn.functional.gelu(self.ln(self.proj(x))))
        return torch.softmax(self.head(torch.flatten(h, 1)), dim=1)


def make_png(path, size, seed):
    img = np.random.default_rng(seed).integers(0, 256, size=(3, size, size), dtype=np.uint8)
    torchvision.io.write_png(torch.from_numpy(img), path)
    return img


def resnet18():
    m = resnet18_perturbed(3)
    path = export(m, torch.zeros(1, 3, 224, 224), "resnet18", 13)
    # a config naming the model, dlcl-eval on two PNGs
    os.makedirs(f"{tmp}/imgs/a", exist_ok=True)
    imgs = np.stack([make_png(f"{tmp}/imgs/a/img{i}.png", 224, i) for i in range(2)])
    mean, std = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
    with open(f"{tmp}/r18.ini", "w") as f:
        f.write("[net]\nmodel = resnet18.onnx\nbatch = 2\n[data]\nformat = folder\ntest = imgs\n"
                "mean = 0.485, 0.456, 0.406\nstd = 0.229, 0.224, 0.225\n")
    rc, log = run([f"{TOOLS}/dlcl-eval", f"{tmp}/r18.ini", "--logits", f"{tmp}/r18.logits"])
    ok, detail = rc == 0, log
    if ok:
        x = torch.from_numpy((imgs.astype(np.float32) / 255 - mean[None, :, None, None]) / std[None, :, None, None])
        with torch.no_grad():
            want = m(x).numpy()
        got = np.fromfile(f"{tmp}/r18.logits", dtype=np.float32).reshape(2, 1000)
        ok, detail = close(got, want)
        print(f"# resnet18: {detail}")
    report(ok, "resnet18_config_with_model_gives_torchvision_logits", detail)
    # no config: the image as read (scale 1/255), then with the flags' normalisation
    for flags, xin in (([], imgs[:1].astype(np.float32) / 255),
                       (["--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225"],
                        (imgs[:1].astype(np.float32) / 255 - mean[None, :, None, None]) / std[None, :, None, None])):
        rc, log = run([f"{TOOLS}/dlcl-predict", path, f"{tmp}/imgs/a/img0.png"] + flags)
        with torch.no_grad():
            top = int(m(torch.from_numpy(xin)).argmax())
        ok = rc == 0 and log.startswith(f"{tmp}/imgs/a/img0.png:  {top} ")
        report(ok, "dlcl_predict_on_bare_onnx_gives_torch_top1" + ("_normalised" if flags else ""),
               log + f"\ntorch's top-1: {top}")


def fine_tune(cnn_path):
    """dlcl-train on an imported model: one epoch, a checkpoint with the model's names."""
    for i in range(4):
        os.makedirs(f"{tmp}/small/{'ab'[i % 2]}", exist_ok=True)
        make_png(f"{tmp}/small/{'ab'[i % 2]}/i{i}.png", 16, 10 + i)
    with open(f"{tmp}/ft.ini", "w") as f:
        f.write(f"[net]\nmodel = {os.path.basename(cnn_path)}\nbatch = 2\nepochs = 1\n"
                f"checkpoint = {tmp}/ft.safetensors\n[optimizer]\ntype = sgd\nlearning_rate = 0.01\n"
                "[data]\nformat = folder\ntrain = small\ntest = small\n")
    rc, log = run([f"{TOOLS}/dlcl-train", f"{tmp}/ft.ini"])
    ok = rc == 0 and os.path.exists(f"{tmp}/ft.safetensors")
    if ok:
        with open(f"{tmp}/ft.safetensors", "rb") as f:
            head = f.read(4096)
        ok = b'"conv1.weight"' in head and b'"bn1.running_var"' in head and b'"fc2.bias"' in head
    report(ok, "dlcl_train_fine_tunes_an_imported_model_and_saves_torch_names", log)


def tiny(nodes=None, inits=None, opset=13, in_shape=("N", 4)):
    """x [N,4] -> Gemm(W, B) -> Relu -> y, with parts replaced."""
    w = oh.make_tensor("fc.weight", onnx.TensorProto.FLOAT, [3, 4], np.arange(12, dtype=np.float32).tolist())
    b = oh.make_tensor("fc.bias", onnx.TensorProto.FLOAT, [3], [0.0, 1.0, 2.0])
    nodes = nodes or [oh.make_node("Gemm", ["x", "fc.weight", "fc.bias"], ["h"], name="fc", transB=1),
                      oh.make_node("Relu", ["h"], ["y"], name="act")]
    g = oh.make_graph(nodes, "tiny", [oh.make_tensor_value_info("x", onnx.TensorProto.FLOAT, list(in_shape))],
                      [oh.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 3])],
                      initializer=[w, b] if inits is None else inits)
    return oh.make_model(g, opset_imports=[oh.make_opsetid("", opset)]).SerializeToString()


def bad_models():
    good = tiny()
    w = oh.make_tensor("fc.weight", onnx.TensorProto.INT32, [3, 4], list(range(12)))
    b = oh.make_tensor("fc.bias", onnx.TensorProto.FLOAT, [3], [0.0, 1.0, 2.0])
    cases = [
        ("truncated", good[: len(good) // 2], "DLCL_ERR_DATA", "not an ONNX model"),
        ("not_protobuf", b"\xff" * 64, "DLCL_ERR_DATA", "not an ONNX model"),
        ("weight_of_wrong_type", tiny(inits=[w, b]), "DLCL_ERR_DATA", "'fc.weight') has ONNX data type 6, not float"),
        ("missing_initializer", tiny(inits=[b]), "DLCL_ERR_DATA", "node 'fc' (Gemm): input 'fc.weight' is defined nowhere"),
        ("cycle", tiny(nodes=[oh.make_node("Add", ["x", "y"], ["h"], name="a"),
                              oh.make_node("Relu", ["h"], ["y"], name="r")]), "DLCL_ERR_DATA", "cycle"),
        ("unsupported_operator", tiny(nodes=[oh.make_node("Gemm", ["x", "fc.weight", "fc.bias"], ["h"], name="fc",
                                                          transB=1),
                                             oh.make_node("Cos", ["h"], ["y"], name="cos1")]),
         "DLCL_ERR_CONFIG", "node 'cos1' (Cos): operator Cos is not supported"),
        ("unsupported_attribute", tiny(nodes=[oh.make_node("Gemm", ["x", "fc.weight", "fc.bias"], ["y"], name="fc",
                                                           transA=1)]), "DLCL_ERR_CONFIG", "transA = 1"),
        ("dynamic_shape", tiny(in_shape=("N", "F")), "DLCL_ERR_CONFIG", "dimension 1 is dynamic ('F')"),
        ("old_opset", tiny(opset=11), "DLCL_ERR_CONFIG", "operator set 11"),
    ]
    np.zeros((2, 4), np.float32).tofile(f"{tmp}/tiny.in")
    path = f"{tmp}/good.onnx"
    with open(path, "wb") as f:
        f.write(good)
    rc, log = run([ONNX_RUN, path, f"{tmp}/tiny.in", "2", f"{tmp}/t.l", f"{tmp}/t.p"])
    got = np.fromfile(f"{tmp}/t.l", dtype=np.float32) if rc == 0 else None
    report(rc == 0 and got is not None and np.allclose(got, [0, 1, 2, 0, 1, 2]), "handmade_gemm_model_imports", log)
    for name, data, status, text in cases:
        path = f"{tmp}/bad_{name}.onnx"
        with open(path, "wb") as f:
            f.write(data)
        rc, log = run([ONNX_RUN, path, f"{tmp}/tiny.in", "2", f"{tmp}/t.l", f"{tmp}/t.p"])
        ok = rc == 1 and log.startswith(status) and text in log and path in log
        report(ok, f"bad_model_{name}_is_{status}", log + f"\nexpected {status} with '{text}'")


torch.manual_seed(0)
cnn = check_model("cnn", Cnn(), torch.randn(3, 3, 16, 16), 13)
torch.manual_seed(1)
check_model("seq", Seq(), torch.randn(3, 6, 8), 17, softmax=True)
bad_models()
fine_tune(cnn)
resnet18()
print(f"1..{tap.count}")
sys.exit(1 if tap.failed else 0)
