"""Generates test/fixtures/safetensors/: small files written by the reference Python `safetensors` package.

Run by hand (never by CI): ~/.cache/sftkit/pyref/bin/python scripts/gen-fixtures/safetensors.py
Outputs:
  python-all-dtypes.safetensors  one tensor per dtype (+ a scalar and an empty tensor), __metadata__ set
  sharded/                       model.safetensors.index.json + 2 shards (HF sharded layout)
  expected.json                  the values/shapes/dtypes of both, and the versions used
"""
import json
import os
import sys

# This file is named like the package it uses: drop its own directory from the import path.
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import numpy
import safetensors
import torch
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "test", "fixtures", "safetensors")

DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def values_for(dtype_name):
    """Six values exactly representable in the dtype, with the dtype's extremes where it matters."""
    if dtype_name in ("F64", "F32", "F16", "BF16"):
        return [-1.5, -0.25, 0.0, 0.5, 3.0, 96.0]
    if dtype_name == "I64":
        return [-(2**62), -3, 0, 1, 2**40, 2**62]
    if dtype_name == "I32":
        return [-(2**31), -3, 0, 1, 70000, 2**31 - 1]
    if dtype_name == "I16":
        return [-32768, -3, 0, 1, 1000, 32767]
    if dtype_name == "I8":
        return [-128, -3, 0, 1, 100, 127]
    if dtype_name == "U8":
        return [0, 1, 2, 128, 200, 255]
    if dtype_name == "BOOL":
        return [True, False, True, True, False, False]
    raise ValueError(dtype_name)


def jsonable(values, dtype_name):
    if dtype_name == "I64":
        return [str(v) for v in values]  # beyond 2^53: strings, compared as BigInt
    if dtype_name == "BOOL":
        return [1 if v else 0 for v in values]
    return values


def main():
    os.makedirs(os.path.join(OUT, "sharded"), exist_ok=True)
    expected = {
        "generator": "scripts/gen-fixtures/safetensors.py",
        "versions": {
            "python": sys.version.split()[0],
            "safetensors": safetensors.__version__,
            "torch": torch.__version__,
            "numpy": numpy.__version__,
        },
        "allDtypes": {"file": "python-all-dtypes.safetensors", "metadata": {}, "tensors": {}},
        "sharded": {"dir": "sharded", "metadata": {}, "tensors": {}},
    }

    tensors = {}
    for name, dt in DTYPES.items():
        vals = values_for(name)
        t = torch.tensor(vals, dtype=dt).reshape(2, 3)
        tensors[f"t_{name.lower()}"] = t
        expected["allDtypes"]["tensors"][f"t_{name.lower()}"] = {"dtype": name, "shape": [2, 3], "values": jsonable(vals, name)}
    tensors["scalar_f32"] = torch.tensor(2.5, dtype=torch.float32)
    expected["allDtypes"]["tensors"]["scalar_f32"] = {"dtype": "F32", "shape": [], "values": [2.5]}
    tensors["empty_f32"] = torch.zeros(0, 3, dtype=torch.float32)
    expected["allDtypes"]["tensors"]["empty_f32"] = {"dtype": "F32", "shape": [0, 3], "values": []}
    meta = {"format": "pt", "note": "written by python safetensors"}
    save_file(tensors, os.path.join(OUT, "python-all-dtypes.safetensors"), metadata=meta)
    expected["allDtypes"]["metadata"] = meta

    # Sharded HF layout: two shards and an index (weight_map name -> shard file).
    a = (torch.arange(12, dtype=torch.float32) / 4).reshape(3, 4)
    b = torch.arange(5, dtype=torch.float32) - 2
    c = (torch.arange(8, dtype=torch.float32) * 0.125).reshape(2, 4).to(torch.bfloat16)
    shard1, shard2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
    save_file({"model.a.weight": a, "model.b.bias": b}, os.path.join(OUT, "sharded", shard1), metadata={"format": "pt"})
    save_file({"lm_head.weight": c}, os.path.join(OUT, "sharded", shard2), metadata={"format": "pt"})
    total = sum(t.numel() * t.element_size() for t in (a, b, c))
    index = {
        "metadata": {"total_size": total},
        "weight_map": {"lm_head.weight": shard2, "model.a.weight": shard1, "model.b.bias": shard1},
    }
    with open(os.path.join(OUT, "sharded", "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    expected["sharded"]["metadata"] = {"format": "pt"}
    for name, t, dt in (("model.a.weight", a, "F32"), ("model.b.bias", b, "F32"), ("lm_head.weight", c, "BF16")):
        expected["sharded"]["tensors"][name] = {"dtype": dt, "shape": list(t.shape), "values": t.float().flatten().tolist()}

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=2)
        f.write("\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
