"""Golden fixtures for the frozen base formats of LoRA training (issue 24: loadModel's baseDtype / doubleQuant),
checked by test/parity/base-dtype.test.ts.

Run by hand, never by CI (after lora.py: it reuses the PEFT adapters and batches of tiny-<name>-lora):
    ~/.cache/sftkit/pyref/bin/python scripts/gen-fixtures/base_dtype.py
(the venv is scripts/gen-fixtures/setup-venv.sh's; no bitsandbytes is needed: the formats are written out below, op by
op in fp32 torch, exactly as the contract in test/fixtures/base-dtype/SOURCE.md says, so that the C++ engine and this
reference agree bitwise on the quantised values.)

Outputs (test/fixtures/base-dtype/):
  <name>/<dtype>.json   for tiny-llama, tiny-gpt2 (Conv1D: quantised in the engine's [out, in] layout, the transpose of
                        the file's tensor) and tiny-qwen2 (biases, untied head), each with its PEFT adapter
                        tiny-<name>-lora, and dtype in bfloat16, int8, nf4, nf4-dq (nf4 + double quantisation): a
                        transformers + peft model in fp32 whose 2-D weights are dequant(quant(W)) (norms and biases
                        untouched; a tied head is the embedding, quantised once), on lora.py's batch: the logits with
                        the adapter, the loss sum and label count, the gradient of every lora_A / lora_B, and a greedy
                        generation. Same keys as tiny-<name>-lora/parity.json, without mergedLogits.
  quantized.safetensors the stored formats of every 2-D weight of tiny-llama and tiny-gpt2 (+ two synthetic tensors:
                        [64, 1000] normal, so double quantisation sees more than 256 blocks, and [8, 96] with an
                        all-zero row and an all-zero block), plus the NF4 codebook and the 8-bit dynamic map.
"""
import importlib.util
import json
import math
import os
import sys

# scripts/gen-fixtures/ holds files that could shadow packages (see lora.py)
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import peft
import torch
import transformers
from peft import PeftModel
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

# The loss and logits-row helpers of the LoRA fixtures (lora.py, loaded by path: this directory is off sys.path).
_lora_spec = importlib.util.spec_from_file_location("lora_fixtures", os.path.join(os.path.dirname(os.path.abspath(__file__)), "lora.py"))
_lora = importlib.util.module_from_spec(_lora_spec)
_lora_spec.loader.exec_module(_lora)
masked_loss_sum, rows = _lora.masked_loss_sum, _lora.rows

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
MODELS = os.path.join(REPO, "test", "fixtures", "models")
OUT = os.path.join(REPO, "test", "fixtures", "base-dtype")

NAMES = ["llama", "gpt2", "qwen2"]
DTYPES = ["bfloat16", "int8", "nf4", "nf4-dq"]
STORED = ["llama", "gpt2"]  # the models whose quantised tensors go into quantized.safetensors

# QLoRA / bitsandbytes NF4 (functional.get_4bit_type("nf4")), as FORMAT.md lists it.
NF4 = torch.tensor([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
                    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
                    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                    0.7229568362236023, 1.0], dtype=torch.float32)
NF4_MID = (NF4[:-1] + NF4[1:]) / 2
BLOCK = 64
BLOCK2 = 256


def dynamic_map():
    """bitsandbytes create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8), per FORMAT.md: float64, then
    float32, sorted ascending."""
    values = []
    for i in range(7):
        k = 2 ** i + 1
        b = torch.tensor([0.1 + j * (0.9 / (k - 1)) for j in range(k)], dtype=torch.float64)
        means = (b[:-1] + b[1:]) / 2
        values += (10 ** (i - 6) * means).tolist()
        values += (-(10 ** (i - 6)) * means).tolist()
    values += [0.0, 1.0]
    assert len(values) == 256
    return torch.tensor(values, dtype=torch.float64).to(torch.float32).sort().values


MAP8 = dynamic_map()
MAP8_MID = (MAP8[:-1] + MAP8[1:]) / 2


def sanity_checks():
    # 1. The codebook is QLoRA's: bitsandbytes create_normal_map(offset=0.9677083) (norm.ppf of float32 linspaces,
    #    the 8 positive and 7 negative quantiles, divided by the largest), recomputed here with torch's ndtri.
    offset = 0.9677083
    v1 = torch.special.ndtri(torch.linspace(offset, 0.5, 9)[:-1].double())
    v3 = -torch.special.ndtri(torch.linspace(offset, 0.5, 8)[:-1].double())
    v = torch.cat([v1, torch.zeros(1, dtype=torch.float64), v3]).float().sort().values
    v = v / v.max()
    assert torch.equal(v, NF4), f"NF4 codebook differs from create_normal_map: {(v - NF4).abs().max()}"
    # 2. bucketize over the fp32 midpoints is nearest-code rounding (both maps), on random values, the codes themselves
    #    and the midpoints (a tie goes to the lower code). Exactly nearest (in float64) except within the rounding of
    #    the fp32 midpoint itself (at most half an ulp, 3e-8): a value that close to the exact midpoint may take the
    #    other neighbour (bitsandbytes' NF4 kernel compares with fp32 midpoint constants too).
    for code, mid in [(NF4, NF4_MID), (MAP8, MAP8_MID)]:
        assert torch.all(code[1:] > code[:-1])
        exact = (code[:-1].double() + code[1:].double()) / 2
        slack = float((mid.double() - exact).abs().max())
        assert slack <= 3e-8
        g = torch.Generator().manual_seed(1)
        x = torch.cat([torch.rand(200000, generator=g) * 2 - 1, code, mid, torch.tensor([-1.0, 1.0, 0.0])])
        q = torch.bucketize(x, mid)
        d = (x.double()[:, None] - code.double()[None, :]).abs()
        excess = d.gather(1, q[:, None]).reshape(-1) - d.min(dim=1).values
        assert float(excess.max()) <= 2 * slack, "bucketize is not nearest-code rounding"
        assert torch.equal(torch.bucketize(code, mid), torch.arange(len(code))), "a code does not map to itself"
        assert torch.equal(torch.bucketize(mid, mid), torch.arange(len(mid))), "a tie does not go to the lower code"
    assert float(MAP8.min()) > -1 and float(MAP8.max()) == 1.0 and int((MAP8 == 0).sum()) == 1


# ---- the formats (FORMAT.md), on a 2-D fp32 weight in the engine's [out, in] layout ----

def quant_int8(w):
    x = w.float()
    absmax = x.abs().amax(dim=1)
    scale = absmax / 127
    safe = torch.where(scale == 0, torch.ones_like(scale), scale)
    q = torch.round(x / safe[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scale


def dequant_int8(q, scale):
    return q.float() * scale[:, None]


def block_normalise(flat, block):
    """flat fp32 [n] zero-padded into blocks of `block` -> (absmax [blocks], values / absmax with 0 for a zero block)."""
    n = flat.numel()
    padded = torch.zeros(math.ceil(n / block) * block, dtype=torch.float32)
    padded[:n] = flat
    v = padded.view(-1, block)
    absmax = v.abs().amax(dim=1)
    safe = torch.where(absmax == 0, torch.ones_like(absmax), absmax)
    return absmax, v / safe[:, None]


def quant_nf4(w):
    flat = w.float().reshape(-1)
    n = flat.numel()
    absmax, norm = block_normalise(flat, BLOCK)
    q = torch.bucketize(norm, NF4_MID)
    packed = ((q[:, 0::2] << 4) | q[:, 1::2]).to(torch.uint8)
    return packed.reshape(-1)[: math.ceil(n / 2)].clone(), absmax


def nf4_codes(data, n):
    hi = (data >> 4).to(torch.long)
    lo = (data & 15).to(torch.long)
    return torch.stack([hi, lo], dim=1).reshape(-1)[:n]


def dequant_nf4(data, absmax, shape):
    n = math.prod(shape)
    q = nf4_codes(data, n)
    scale = absmax.repeat_interleave(BLOCK)[:n]
    return (NF4[q] * scale).reshape(shape)


def double_quant(absmax):
    blocks = absmax.numel()
    offset = torch.tensor(float(absmax.double().sum() / blocks), dtype=torch.float32)
    shifted = absmax - offset
    absmax2, norm2 = block_normalise(shifted, BLOCK2)
    q8 = torch.bucketize(norm2, MAP8_MID).to(torch.uint8).reshape(-1)[:blocks].clone()
    return q8, absmax2, offset.reshape(1)


def dequant_absmax(q8, absmax2, offset):
    blocks = q8.numel()
    scaled = MAP8[q8.to(torch.long)] * absmax2.repeat_interleave(BLOCK2)[:blocks]
    return scaled + offset


def roundtrip(w, dtype):
    """dequant(quant(w)) for a 2-D [out, in] fp32 weight."""
    if dtype == "bfloat16":
        return w.to(torch.bfloat16).float()
    if dtype == "int8":
        return dequant_int8(*quant_int8(w))
    data, absmax = quant_nf4(w)
    if dtype == "nf4-dq":
        absmax = dequant_absmax(*double_quant(absmax))
    else:
        assert dtype == "nf4", dtype
    return dequant_nf4(data, absmax, tuple(w.shape))


def stored_entries(prefix, w):
    """The quantized.safetensors entries of one [out, in] weight."""
    q, scale = quant_int8(w)
    data, absmax = quant_nf4(w)
    q8, absmax2, offset = double_quant(absmax)
    deq = dequant_nf4(data, dequant_absmax(q8, absmax2, offset), tuple(w.shape))
    assert torch.equal(deq, roundtrip(w, "nf4-dq"))
    return {
        f"{prefix}.int8.q": q, f"{prefix}.int8.scale": scale,
        f"{prefix}.nf4.q": data, f"{prefix}.nf4.absmax": absmax,
        f"{prefix}.nf4dq.q": data.clone(), f"{prefix}.nf4dq.absmax_q": q8, f"{prefix}.nf4dq.absmax2": absmax2,
        f"{prefix}.nf4dq.offset": offset, f"{prefix}.nf4dq.dequant": deq,
    }


# ---- the models ----

def is_conv1d(module):
    return type(module).__name__ == "Conv1D"


def frozen_2d(model):
    """(name, parameter, conv1d) of every 2-D parameter, a tied one once."""
    seen = set()
    out = []
    for mname, module in model.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            if p.dim() != 2 or id(p) in seen:
                continue
            seen.add(id(p))
            out.append((f"{mname}.{pname}" if mname else pname, p, is_conv1d(module)))
    return out


def engine_layout(p, conv1d):
    w = p.detach().float()
    return w.t().contiguous() if conv1d else w


def stored_bytes(shape, dtype):
    """Bytes of one weight's small form: the codes and the scales (int8: fp32 per row; nf4: fp32 absmax per block,
    with double quantisation uint8 codes per block + fp32 per 256 blocks; the one fp32 offset not counted)."""
    numel = math.prod(shape)
    blocks = math.ceil(numel / BLOCK)
    return {"bfloat16": 2 * numel, "int8": numel + 4 * shape[0], "nf4": math.ceil(numel / 2) + 4 * blocks,
            "nf4-dq": math.ceil(numel / 2) + blocks + 4 * math.ceil(blocks / BLOCK2)}[dtype]


def quantise_base(model, dtype):
    stats = {}
    with torch.no_grad():
        for name, p, conv1d in frozen_2d(model):
            w = engine_layout(p, conv1d)
            d = roundtrip(w, dtype)
            stats[name] = float((d - w).abs().max())
            p.copy_(d.t() if conv1d else d)
    return stats


def reference(name, dtype, lora):
    base = AutoModelForCausalLM.from_pretrained(os.path.join(MODELS, f"tiny-{name}"), dtype=torch.float32).eval()
    weights = {n: list(engine_layout(p, conv1d).shape) for n, p, conv1d in frozen_2d(base)}
    stats = quantise_base(base, dtype) if dtype != "float32" else {}
    model = PeftModel.from_pretrained(base, os.path.join(MODELS, f"tiny-{name}-lora"), is_trainable=True).eval()
    ids = torch.tensor(lora["inputIds"]).reshape(lora["shape"])
    mask = torch.tensor(lora["attentionMask"]).reshape(lora["shape"])
    labels = torch.tensor(lora["labels"]).reshape(lora["shape"])
    model.zero_grad()
    logits = model(input_ids=ids, attention_mask=mask).logits
    loss, count = masked_loss_sum(logits, labels)
    loss.backward()
    loss = loss.detach()
    grads = {}
    for n, p in model.named_parameters():
        if p.requires_grad:
            assert "lora_" in n, n
            grads[n.replace(".default.", ".")] = {"shape": list(p.grad.shape), "data": [float(x) for x in p.grad.reshape(-1)]}
        elif p.grad is not None:
            raise SystemExit(f"{name}: frozen {n} got a gradient")
    assert sorted(grads) == sorted(lora["grads"]), f"{name}: adapter names differ from lora parity.json"
    gen = lora["generate"]
    with torch.no_grad():
        g = model.generate(input_ids=torch.tensor([gen["prompt"]]), max_new_tokens=gen["maxNewTokens"],
                           do_sample=False, eos_token_id=None, pad_token_id=0)
    return logits.detach(), mask, float(loss), count, grads, g[0, len(gen["prompt"]):].tolist(), stats, weights


def main():
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    versions = {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}
    sanity_checks()
    os.makedirs(OUT, exist_ok=True)
    for name in NAMES:
        with open(os.path.join(MODELS, f"tiny-{name}-lora", "parity.json")) as f:
            lora = json.load(f)
        # The pipeline with the float32 base reproduces lora.py's record (same adapter, batch, loss convention), to
        # the last bits another machine's matmul kernels differ by (measured: logits 2.9e-6, gradients 2.4e-6 of the
        # largest entry; within lora.test.ts's tolerances).
        logits, mask, loss, count, grads, gen, _, _ = reference(name, "float32", lora)
        ref = torch.tensor([[r if r is not None else [0.0] * logits.shape[-1] for r in b] for b in lora["logits"]])
        diff = float(((logits - ref).abs() * (mask == 1).unsqueeze(-1)).max())
        gdiff = max(float((torch.tensor(g["data"]) - torch.tensor(lora["grads"][k]["data"])).abs().max()) /
                    max(abs(x) for x in lora["grads"][k]["data"]) for k, g in grads.items())
        assert diff <= 1e-5 and gdiff <= 1e-4 and count == lora["tokens"] \
            and abs(loss - lora["lossSum"]) <= 1e-5 * abs(loss) and gen == lora["generate"]["output"], \
            f"{name}: float32 does not reproduce lora parity.json (logits {diff}, grads {gdiff})"
        os.makedirs(os.path.join(OUT, name), exist_ok=True)
        for dtype in DTYPES:
            logits, mask, loss, count, grads, gen, stats, weights = reference(name, dtype, lora)
            record = {
                "versions": versions,
                "baseDtype": "nf4" if dtype == "nf4-dq" else dtype,
                "doubleQuant": dtype == "nf4-dq",
                "shape": lora["shape"],
                "inputIds": lora["inputIds"],
                "attentionMask": lora["attentionMask"],
                "labels": lora["labels"],
                "logits": rows(logits, mask == 1),
                "lossSum": loss,
                "tokens": count,
                "grads": grads,
                "generate": {**lora["generate"], "output": gen},
                # max |dequant(quant(W)) - W| of each quantised weight (HF names; information only)
                "quantError": stats,
                # the quantised weights ([out, in]) and the bytes of their small form (stored_bytes), and in fp32
                "baseWeights": weights,
                "baseBytes": sum(stored_bytes(shape, dtype) for shape in weights.values()),
                "float32Bytes": sum(4 * math.prod(shape) for shape in weights.values()),
            }
            with open(os.path.join(OUT, name, f"{dtype}.json"), "w") as f:
                json.dump(record, f)
            print(f"{name:6} {dtype:9} loss {loss:.6f} (fp32 {lora['lossSum']:.6f}) gen {gen} "
                  f"(fp32 {lora['generate']['output']}) weights {len(stats)} worst quant err {max(stats.values()):.4g}")

    tensors = {"nf4_codebook": NF4.clone(), "dynamic_map": MAP8.clone()}
    for name in STORED:
        model = AutoModelForCausalLM.from_pretrained(os.path.join(MODELS, f"tiny-{name}"), dtype=torch.float32)
        for pname, p, conv1d in frozen_2d(model):
            tensors.update(stored_entries(f"{name}/{pname}", engine_layout(p, conv1d)))
    g = torch.Generator().manual_seed(0)
    big = torch.randn(64, 1000, generator=g, dtype=torch.float32)
    zeros = torch.randn(8, 96, generator=g, dtype=torch.float32)
    zeros[2] = 0           # an all-zero row (int8 scale 0; flat 192..287: nf4 block 3, 192..255, is all zero)
    zeros[4, 64:] = 0      # with zeros[5, :32]: flat 448..511, nf4 block 7, an all-zero block across two rows
    zeros[5, :32] = 0
    for sname, w in [("synthetic/big.weight", big), ("synthetic/zeros.weight", zeros)]:
        tensors[f"{sname}.source"] = w.clone()
        tensors.update(stored_entries(sname, w))
    assert math.ceil(big.numel() / BLOCK) > BLOCK2
    z = tensors["synthetic/zeros.weight.nf4.absmax"]
    assert float(z[3]) == 0 and float(z[7]) == 0 and int((z == 0).sum()) == 2 and float(tensors["synthetic/zeros.weight.int8.scale"][2]) == 0
    path = os.path.join(OUT, "quantized.safetensors")
    save_file({k: v.contiguous() for k, v in tensors.items()}, path,
              # one key: safetensors writes the metadata map in no fixed order
              metadata={"generator": "scripts/gen-fixtures/base_dtype.py " + json.dumps(versions, sort_keys=True)})
    print("quantized.safetensors", len(tensors), "tensors", os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
