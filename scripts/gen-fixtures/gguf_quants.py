#!/usr/bin/env python3
"""Reference encodings from llama.cpp's gguf-py (quants.quantize) for test/unit/export/quantize.test.ts:
values with ties, zero blocks, subnormals, large magnitudes and random normals, as f16, bf16 and Q8_0 bytes.
Usage: python gguf_quants.py OUT.json  (needs gguf, numpy)."""
import importlib.metadata
import json
import sys

import numpy as np
from gguf import quants
from gguf.constants import GGMLQuantizationType as Q

rng = np.random.default_rng(23)
special = np.array([0.0, -0.0, 1.0, -1.0, 0.5, 1.5, 2.5, -2.5, 65504.0, 65520.0, 1e-8, -3e-7, 6.1e-5, 1e5, 3.0e38, 1.0009765625,
                    1.00048828125, 1.000732421875, 0.333333343, -7.77, 127.0, 63.5, 0.1, 0.2, 0.3, 1e-3, -1e-3, 2.0 ** -24, 2.0 ** -25,
                    3 * 2.0 ** -26, 1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -9], dtype=np.float32)
blocks = [
    special,
    np.zeros(32, dtype=np.float32),
    (np.arange(32, dtype=np.float32) - 16) * 0.5,  # exact halves: ties in q = x * (127 / amax)
    rng.standard_normal(32 * 6).astype(np.float32) * np.float32(0.05),
    rng.standard_normal(32 * 2).astype(np.float32) * np.float32(300),
]
values = np.concatenate(blocks).astype(np.float32)
out = {
    'gguf_py_version': importlib.metadata.version('gguf'),
    'values_f32_hex': values.tobytes().hex(),
    'f16_hex': quants.quantize(values, Q.F16).tobytes().hex(),
    'bf16_hex': quants.quantize(values, Q.BF16).tobytes().hex(),
    'q8_0_hex': quants.quantize(values.reshape(-1, 32), Q.Q8_0).tobytes().hex(),
}
json.dump(out, open(sys.argv[1], 'w'), indent=1)
