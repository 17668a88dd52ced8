"""Verifies sftkit's llama2.c import against Hugging Face and records test/fixtures/llama2c/stories260K-hf.json.

Run by hand (never by CI), from the repository root:
    ~/.cache/sftkit/pyref/bin/python scripts/gen-fixtures/llama2c.py
It converts test/fixtures/models/stories260K with sftkit's own converter (src/convert/llama2c.ts, through node),
then checks, independently of that converter:
  * the converted tensors equal HF-layout tensors computed here from stories260K.bin with numpy, using the
    `permute` of transformers' convert_llama_weights_to_hf (interleaved RoPE pairs -> rotate_half);
  * transformers.AutoModelForCausalLM greedy generation from [1] equals the 41 ids of stories260K/SOURCE.md;
  * tokenizer.json (HF `tokenizers`) encodes a few strings to the same ids as llama2.c's own BPE (run.c's
    score-based greedy merge, re-implemented below on tok512.bin).
and records: versions, per-tensor sha256 of the expected float32 bytes, the HF logits at position 0, the greedy ids,
the encodings, and the sha256 of the verified tokenizer.json / config.json.
"""
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import tokenizers
import torch
import transformers

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
ASSETS = os.path.join(ROOT, "test", "fixtures", "models", "stories260K")
OUT = os.path.join(ROOT, "test", "fixtures", "llama2c", "stories260K-hf.json")

# From stories260K/SOURCE.md (llama2.c `run stories260K.bin -z tok512.bin -t 0.0`).
SOURCE_IDS = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410,
              408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352]

STRINGS = [
    "Once upon a time, there was a little girl",
    "Lily and Tom played in the park. They were happy!",
    "Hello world",
    "",
    " leading space",
    "two  spaces and\nnew line",
    "naïve café, 日本語 and 🙂",
    "The big dog said: \"Don't run!\"",
    "1234567890 ~]",
]


def convert(out_dir):
    script = (
        "import { convertLlama2c } from './src/convert/llama2c.ts';"
        "await convertLlama2c({ checkpoint: process.argv[1], tokenizer: process.argv[2], out: process.argv[3] });"
    )
    subprocess.run(
        ["node", "--import", "tsx", "--input-type=module", "-e", script,
         os.path.join(ASSETS, "stories260K.bin"), os.path.join(ASSETS, "tok512.bin"), out_dir],
        cwd=ROOT, check=True)


def read_checkpoint():
    raw = open(os.path.join(ASSETS, "stories260K.bin"), "rb").read()
    dim, hidden, layers, heads, kv_heads, vocab, seq_len = struct.unpack_from("<7i", raw, 0)
    assert vocab > 0, "this script handles the tied stories260K only"
    w = np.frombuffer(raw, dtype="<f4", offset=28)
    hd = dim // heads
    kv = kv_heads * hd
    sizes = [("emb", (vocab, dim)), ("rms_att", (layers, dim)), ("wq", (layers, dim, dim)), ("wk", (layers, kv, dim)),
             ("wv", (layers, kv, dim)), ("wo", (layers, dim, dim)), ("rms_ffn", (layers, dim)),
             ("w1", (layers, hidden, dim)), ("w2", (layers, dim, hidden)), ("w3", (layers, hidden, dim)),
             ("rms_final", (dim,)), ("freq_real", (seq_len, hd // 2)), ("freq_imag", (seq_len, hd // 2))]
    arrays, at = {}, 0
    for name, shape in sizes:
        n = int(np.prod(shape))
        arrays[name] = w[at:at + n].reshape(shape)
        at += n
    assert at == w.size
    cfg = dict(dim=dim, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads, vocab=vocab, seq_len=seq_len)
    return cfg, arrays


def hf_permute(w, n_heads, dim1, dim2):
    """transformers/models/llama/convert_llama_weights_to_hf.py `permute` (Meta interleaved -> HF rotate_half)."""
    return w.reshape(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(0, 2, 1, 3).reshape(dim1, dim2)


def expected_tensors(cfg, a):
    dim, heads, kvh = cfg["dim"], cfg["heads"], cfg["kv_heads"]
    kv = kvh * (dim // heads)
    t = {"model.embed_tokens.weight": a["emb"], "model.norm.weight": a["rms_final"]}
    for l in range(cfg["layers"]):
        p = f"model.layers.{l}"
        t[f"{p}.input_layernorm.weight"] = a["rms_att"][l]
        t[f"{p}.self_attn.q_proj.weight"] = hf_permute(a["wq"][l], heads, dim, dim)
        t[f"{p}.self_attn.k_proj.weight"] = hf_permute(a["wk"][l], kvh, kv, dim)
        t[f"{p}.self_attn.v_proj.weight"] = a["wv"][l]
        t[f"{p}.self_attn.o_proj.weight"] = a["wo"][l]
        t[f"{p}.post_attention_layernorm.weight"] = a["rms_ffn"][l]
        t[f"{p}.mlp.gate_proj.weight"] = a["w1"][l]
        t[f"{p}.mlp.down_proj.weight"] = a["w2"][l]
        t[f"{p}.mlp.up_proj.weight"] = a["w3"][l]
    return {k: np.ascontiguousarray(v, dtype="<f4") for k, v in t.items()}


def read_tok512(vocab_size):
    raw = open(os.path.join(ASSETS, "tok512.bin"), "rb").read()
    at, pieces, scores = 4, [], []
    for _ in range(vocab_size):
        score, n = struct.unpack_from("<fi", raw, at)
        at += 8
        pieces.append(raw[at:at + n])
        scores.append(score)
        at += n
    assert at == len(raw)
    return pieces, scores


def llama2c_encode(text, pieces, scores):
    """run.c encode(tokenizer, text, bos=0, eos=0): dummy prefix, UTF-8 chars (byte fallback +3), greedy merges."""
    lookup = {p: i for i, p in enumerate(pieces)}
    tokens = []
    if text:
        tokens.append(lookup[b" "])
    for ch in text:
        b = ch.encode("utf-8")
        if b in lookup:
            tokens.append(lookup[b])
        else:
            tokens.extend(x + 3 for x in b)
    while True:
        best_score, best_id, best_idx = -1e10, -1, -1
        for i in range(len(tokens) - 1):
            merged = pieces[tokens[i]] + pieces[tokens[i + 1]]
            j = lookup.get(merged, -1)
            if j != -1 and scores[j] > best_score:
                best_score, best_id, best_idx = scores[j], j, i
        if best_idx == -1:
            break
        tokens[best_idx:best_idx + 2] = [best_id]
    return tokens


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def main():
    cfg, arrays = read_checkpoint()
    expected = expected_tensors(cfg, arrays)

    with tempfile.TemporaryDirectory() as out_dir:
        convert(out_dir)

        # 1. Converted tensors == independently computed HF tensors.
        from safetensors.numpy import load_file
        got = load_file(os.path.join(out_dir, "model.safetensors"))
        assert set(got) == set(expected), sorted(set(got) ^ set(expected))
        for name, t in expected.items():
            assert got[name].dtype == np.float32 and got[name].shape == t.shape, name
            assert np.array_equal(got[name], t), name

        # 2. transformers loads it as is and generates the llama2.c story.
        model = transformers.AutoModelForCausalLM.from_pretrained(out_dir)
        model.eval()
        with torch.no_grad():
            gen = model.generate(torch.tensor([[1]]), max_new_tokens=len(SOURCE_IDS) - 1, do_sample=False)[0].tolist()
            logits0 = model(torch.tensor([[1]])).logits[0, 0].tolist()
        assert gen == SOURCE_IDS, gen
        top = sorted(range(len(logits0)), key=lambda i: -logits0[i])[:3]
        assert top == [403, 385, 410], top

        # 3. tokenizer.json == llama2.c's BPE on a few strings.
        pieces, scores = read_tok512(cfg["vocab"])
        tok = tokenizers.Tokenizer.from_file(os.path.join(out_dir, "tokenizer.json"))
        hf_tok = transformers.AutoTokenizer.from_pretrained(out_dir)
        encodings = []
        for s in STRINGS:
            ids = tok.encode(s, add_special_tokens=False).ids
            ref = llama2c_encode(s, pieces, scores)
            assert ids == ref, (s, ids, ref)
            assert hf_tok(s, add_special_tokens=False).input_ids == ids, s
            with_bos = tok.encode(s).ids
            assert with_bos == [1] + ids, s
            encodings.append({"text": s, "ids": ids, "decoded": tok.decode(ids)})
        story = tok.decode(gen, skip_special_tokens=True)

        files = {f: sha256(open(os.path.join(out_dir, f), "rb").read())
                 for f in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json")}

    record = {
        "generator": "scripts/gen-fixtures/llama2c.py",
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__, "numpy": np.__version__},
        "config": cfg,
        "tensors": {name: {"shape": list(t.shape), "sha256": sha256(t.tobytes()), "sum": float(t.astype(np.float64).sum())}
                    for name, t in sorted(expected.items())},
        "greedyFromBos": gen,
        "greedyText": story,
        "logitsPos0": [round(x, 6) for x in logits0],
        "encodings": encodings,
        "fileSha256": files,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(record, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("verified and wrote", OUT)


if __name__ == "__main__":
    main()
