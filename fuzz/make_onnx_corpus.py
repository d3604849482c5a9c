#!/usr/bin/python3
"""Writes the seed corpus of fuzz_onnx (fuzz/corpus/onnx/): tiny models exported by
torch.onnx.export that together use every operator the import reads (opset 13 and 17, one
exported unfolded so BatchNormalization and x.view(x.size(0), -1)'s Shape/Gather/Unsqueeze/
Concat chain stay), handmade ones (Constant, Slice, Squeeze, Cast, Identity, an int64 and a
double initializer) and the malformed ones test/onnx_import.py makes. A few KiB each: the
smoke test reads at most 64 KiB per file. Needs torch and onnx; a separate script so that
fuzz/make_corpus.py needs neither. Rerun: /usr/bin/python3 fuzz/make_onnx_corpus.py"""
import io
import os

import numpy as np
import onnx
import onnx.helper as oh
import torch
import torch.nn as nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "onnx")
F = onnx.TensorProto.FLOAT


def out(name, data):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def export(name, model, x, opset, fold=True):
    model.eval()
    mode = torch.onnx.TrainingMode.EVAL if fold else torch.onnx.TrainingMode.PRESERVE
    buf = io.BytesIO()
    torch.onnx.export(model, x, buf, opset_version=opset, do_constant_folding=fold, training=mode,
                      input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    out(name, buf.getvalue())


class Cnn(nn.Module):
    """Conv, BatchNormalization, Relu, MaxPool, grouped Conv, LeakyRelu, AveragePool, Sigmoid,
    Resize, Concat, Add, Tanh, GlobalAveragePool, Reshape, Gemm, Dropout."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, groups=2, bias=False)
        self.avg = nn.AvgPool2d(2)
        self.conv3 = nn.Conv2d(4, 2, 1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv4 = nn.Conv2d(6, 4, 3, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(4, 6)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(6, 3)

    def forward(self, x):
        a = self.pool(torch.relu(self.bn1(self.conv1(x))))
        b = nn.functional.leaky_relu(self.conv2(a), 0.2)
        c = self.up(torch.sigmoid(self.conv3(self.avg(b))))
        e = torch.tanh(self.conv4(torch.cat([a, c], 1)) + a)
        f = self.gap(e)
        f = f.view(f.size(0), -1)
        return self.fc2(self.drop(torch.relu(self.fc1(f))))


class Seq(nn.Module):
    """MatMul (+ Add) on [batch, T, D], LayerNormalization, GELU (Erf form), Flatten, Softmax."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 6)
        self.ln = nn.LayerNorm(6)
        self.mix = nn.Linear(6, 3, bias=False)
        self.head = nn.Linear(9, 2, bias=False)

    def forward(self, x):
        h = self.mix(nn.functional.gelu(self.ln(self.proj(x))))
        return torch.softmax(self.head(torch.flatten(h, 1)), dim=1)


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 4)

    def forward(self, x):
        return torch.flatten(torch.relu(self.fc(x)), 1)


def tiny(nodes=None, inits=None, opset=13, in_shape=("N", 4), out_shape=("N", 3)):
    """x [N,4] -> Gemm(W, B) -> Relu -> y, with parts replaced (as test/onnx_import.py)."""
    w = oh.make_tensor("fc.weight", F, [3, 4], np.arange(12, dtype=np.float32).tolist())
    b = oh.make_tensor("fc.bias", F, [3], [0.0, 1.0, 2.0])
    nodes = nodes or [oh.make_node("Gemm", ["x", "fc.weight", "fc.bias"], ["h"], name="fc", transB=1),
                      oh.make_node("Relu", ["h"], ["y"], name="act")]
    g = oh.make_graph(nodes, "tiny", [oh.make_tensor_value_info("x", F, list(in_shape))],
                      [oh.make_tensor_value_info("y", F, list(out_shape))],
                      initializer=[w, b] if inits is None else inits)
    return oh.make_model(g, opset_imports=[oh.make_opsetid("", opset)]).SerializeToString()


def handmade():
    I64 = onnx.TensorProto.INT64
    b = oh.make_tensor("fc.bias", F, [3], [0.0, 1.0, 2.0])
    wd = oh.make_tensor("fc.weight", onnx.TensorProto.DOUBLE, [3, 4], [0.5] * 12)
    w = oh.make_tensor("fc.weight", F, [3, 4], np.ones(12, np.float32).tobytes(), raw=True)
    shape_chain = [
        oh.make_node("Gemm", ["x", "fc.weight", "fc.bias"], ["h"], name="fc", transB=1),
        oh.make_node("Identity", ["h"], ["h2"], name="id"),
        oh.make_node("Shape", ["h2"], ["s"], name="shape"),
        oh.make_node("Constant", [], ["zero"], name="c0", value=oh.make_tensor("v", I64, [1], [0])),
        oh.make_node("Constant", [], ["one"], name="c1", value_ints=[1]),
        oh.make_node("Slice", ["s", "zero", "one"], ["s0"], name="slice"),
        oh.make_node("Cast", ["s0"], ["s0c"], name="cast", to=I64),
        oh.make_node("Constant", [], ["m1"], name="c2", value=oh.make_tensor("v", I64, [1], [-1])),
        oh.make_node("Concat", ["s0c", "m1"], ["shp"], name="cat", axis=0),
        oh.make_node("Reshape", ["h2", "shp"], ["y"], name="reshape"),
    ]
    out("handmade_shape_chain.onnx", tiny(nodes=shape_chain, inits=[w, b]))
    out("handmade_double_weight.onnx", tiny(inits=[wd, b], opset=17))
    mm = [oh.make_node("Transpose", ["fc.weight"], ["wt"], name="t", perm=[1, 0]),
          oh.make_node("MatMul", ["x", "wt"], ["h"], name="mm"),
          oh.make_node("Add", ["h", "fc.bias"], ["h1"], name="bias"),
          oh.make_node("Softmax", ["h1"], ["y"], name="sm", axis=-1)]
    out("handmade_matmul_softmax.onnx", tiny(nodes=mm))


def bad():
    good = tiny()
    out("tiny_gemm.onnx", good)
    w = oh.make_tensor("fc.weight", onnx.TensorProto.INT32, [3, 4], list(range(12)))
    b = oh.make_tensor("fc.bias", F, [3], [0.0, 1.0, 2.0])
    out("bad_truncated.onnx", good[: len(good) // 2])
    out("bad_weight_of_wrong_type.onnx", tiny(inits=[w, b]))
    out("bad_missing_initializer.onnx", tiny(inits=[b]))
    out("bad_cycle.onnx", tiny(nodes=[oh.make_node("Add", ["x", "y"], ["h"], name="a"),
                                      oh.make_node("Relu", ["h"], ["y"], name="r")]))
    out("bad_unsupported_operator.onnx", tiny(nodes=[oh.make_node("Gemm", ["x", "fc.weight", "fc.bias"], ["h"],
                                                                  name="fc", transB=1),
                                                     oh.make_node("Cos", ["h"], ["y"], name="cos1")]))
    out("bad_unsupported_attribute.onnx", tiny(nodes=[oh.make_node("Gemm", ["x", "fc.weight", "fc.bias"], ["y"],
                                                                   name="fc", transA=1)]))
    out("bad_dynamic_shape.onnx", tiny(in_shape=("N", "F")))
    out("bad_old_opset.onnx", tiny(opset=11))


torch.manual_seed(0)
export("cnn_opset13_unfolded.onnx", Cnn(), torch.randn(2, 2, 8, 8), 13, fold=False)
export("cnn_opset13.onnx", Cnn(), torch.randn(2, 2, 8, 8), 13)
export("seq_opset17.onnx", Seq(), torch.randn(2, 3, 4), 17)
export("mlp_opset13.onnx", Mlp(), torch.randn(2, 5), 13)
handmade()
bad()
