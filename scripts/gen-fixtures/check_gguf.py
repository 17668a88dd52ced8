#!/usr/bin/env python3
"""Reads sftkit's GGUF exports with llama.cpp's own gguf-py and checks them against gguf-py's tables and the
safetensors source, never against sftkit's writer:

- every metadata key is one of gguf-py's Keys constants (formatted for the architecture);
- `general.architecture` is in MODEL_ARCH_NAMES and every tensor name is in MODEL_TENSORS[arch] (TENSOR_NAMES);
- every source tensor is mapped to its GGUF name by gguf-py's TensorNameMap, given the layout change
  convert_hf_to_gguf.py applies (llama and smollm3 q/k permutation, GPT-2 Conv1D transpose, tied heads, Gemma's
  norm + 1, phi3's longrope factor tensors; and sftkit's one departure, Gemma's query_pre_attn_scalar folded into
  q_proj / q_norm because llama.cpp scales attention by 1/sqrt(head_dim)), encoded with gguf-py's
  own quantize() in the file's type, and compared byte for byte with the file's data;
- the tokens, token types and merges equal tokenizer.json's; byte tokens appended to a byte-fallback vocabulary
  that lacks them are backed by copies of the unknown token's embedding row.

Usage: python check_gguf.py MANIFEST.json REPORT.json
MANIFEST: [{"name", "file", "model_dir", "type"}] (written by scripts/gen-fixtures/export-gguf.ts).
REPORT (checked in as test/fixtures/gguf/gguf-py-report.json): per export, what gguf-py read (keys with their
value types, tensors with shapes and types, token count) and the counts of checks passed; test/e2e/export-gguf.test.ts
compares sftkit's exports against it. Needs gguf-py and numpy, safetensors: python3 -m venv V && V/bin/pip install gguf numpy safetensors pyyaml.
"""
import importlib.metadata
import json
import re
import sys

import gguf
import numpy as np
from gguf.constants import MODEL_ARCH_NAMES, MODEL_TENSORS, TENSOR_NAMES, GGMLQuantizationType, Keys
from safetensors.numpy import load_file


def known_keys(arch_name):
    keys = set()
    for group in vars(Keys).values():
        if not isinstance(group, type):
            continue
        for v in vars(group).values():
            if isinstance(v, str) and '.' in v:
                keys.add(v.replace('{arch}', arch_name))
    return keys


def permute(w, n_head, n_head_kv):
    # convert_hf_to_gguf.py LlamaModel.permute
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def field_value(r, key):
    f = r.fields[key]
    return f.contents()


def value_type_name(f):
    t = f.types
    if not t:
        return '?'
    if t[0] == gguf.GGUFValueType.ARRAY:
        return f'array<{t[-1].name.lower()}>'
    return t[0].name.lower()


def check(entry):
    r = gguf.GGUFReader(entry['file'])
    problems = []
    arch_name = field_value(r, 'general.architecture')
    arch = next((a for a, n in MODEL_ARCH_NAMES.items() if n == arch_name), None)
    if arch is None:
        problems.append(f'architecture {arch_name} is not in gguf-py MODEL_ARCH_NAMES')
        return {'problems': problems}
    cfg = json.load(open(f"{entry['model_dir']}/config.json"))
    n_blocks = cfg.get('num_hidden_layers', cfg.get('n_layer'))

    # metadata keys against gguf-py's Keys
    allowed_keys = known_keys(arch_name)
    keys = {}
    for k, f in r.fields.items():
        if k.startswith('GGUF.'):
            continue
        keys[k] = value_type_name(f)
        if k not in allowed_keys:
            problems.append(f'metadata key {k} is not a gguf-py Keys constant')

    # tensor names against MODEL_TENSORS[arch]
    allowed = set()
    for t in MODEL_TENSORS[arch]:
        for bid in range(n_blocks):
            base = TENSOR_NAMES[t].format(bid=bid)
            allowed.update({base + '.weight', base + '.bias', base})
    tensors = []
    by_name = {}
    for t in r.tensors:
        shape = [int(x) for x in reversed(t.shape.tolist())]
        tensors.append([t.name, shape, t.tensor_type.name])
        by_name[t.name] = t
        if t.name not in allowed:
            problems.append(f'tensor {t.name} is not in gguf-py MODEL_TENSORS[{arch_name}]')

    # expected tensors from the safetensors source through gguf-py's TensorNameMap
    src = load_file(f"{entry['model_dir']}/model.safetensors")
    tmap = gguf.get_tensor_name_map(arch, n_blocks)
    tied = cfg.get('tie_word_embeddings', arch_name == 'gpt2')
    expected = {}
    for name, data in src.items():
        if re.search(r'\.attn\.(masked_)?bias$|rotary_emb\.inv_freq$', name):
            continue
        new = tmap.get_name(name, try_suffixes=('.weight', '.bias'))
        if new is None:
            problems.append(f'source tensor {name} has no gguf-py name')
            continue
        data = data.astype(np.float32)
        if arch_name == 'gpt2' and re.search(r'\.(c_attn|c_proj|c_fc)\.weight$', name):
            data = data.T.copy()
        if arch_name in ('llama', 'smollm3') and name.endswith(('q_proj.weight', 'q_proj.bias')):
            data = permute(data, cfg['num_attention_heads'], cfg['num_attention_heads'])
        if arch_name in ('llama', 'smollm3') and name.endswith(('k_proj.weight', 'k_proj.bias')):
            data = permute(data, cfg['num_attention_heads'], cfg.get('num_key_value_heads', cfg['num_attention_heads']))
        if arch_name in ('gemma2', 'gemma3'):
            # convert_hf_to_gguf.py's Gemma2Model / Gemma3Model: Gemma's RMSNorm (1 + w) as llama.cpp's w
            if name.endswith('norm.weight'):
                data = data + 1
            # sftkit's departure from convert_hf_to_gguf.py (which ignores it): llama.cpp scales attention by
            # 1/sqrt(head_dim), so query_pre_attn_scalar is folded into q_proj (gemma2) or q_norm (gemma3)
            head_dim = cfg.get('head_dim', cfg['hidden_size'] // cfg['num_attention_heads'])
            c = np.sqrt(head_dim / cfg.get('query_pre_attn_scalar', head_dim))
            if c != 1 and name.endswith('q_norm.weight' if arch_name == 'gemma3' else 'q_proj.weight'):
                data = (data.astype(np.float64) * c).astype(np.float32)
        if tied and new == 'output.weight':
            # a tied head: llama.cpp reads token_embd (stored once); GPT-2 stores the head as a copy
            if 'token_embd.weight' not in expected:
                expected['token_embd.weight'] = data
            continue
        expected[new] = data
    if arch_name == 'gpt2' and tied:
        expected['output.weight'] = expected['token_embd.weight']
    rope = cfg.get('rope_parameters') or cfg.get('rope_scaling') or {}
    if arch_name == 'phi3' and rope.get('rope_type', rope.get('type')) in ('longrope', 'su'):
        # convert_hf_to_gguf.py's Phi3MiniModel.generate_extra_tensors
        expected['rope_factors_long.weight'] = np.asarray(rope['long_factor'], dtype=np.float32)
        expected['rope_factors_short.weight'] = np.asarray(rope['short_factor'], dtype=np.float32)
    # byte tokens sftkit appends to a byte-fallback vocabulary that lacks them: rows copied from the unknown token's
    n_tokens = len(field_value(r, 'tokenizer.ggml.tokens'))
    for name in ('token_embd.weight', 'output.weight'):
        if name in expected and expected[name].shape[0] < n_tokens:
            data = expected[name]
            unk = int(field_value(r, 'tokenizer.ggml.unknown_token_id'))
            extra = n_tokens - data.shape[0]
            expected[name] = np.concatenate([data, np.repeat(data[unk:unk + 1], extra, axis=0)])
            types = field_value(r, 'tokenizer.ggml.token_type')
            if any(t != gguf.TokenType.BYTE for t in types[data.shape[0]:]):
                problems.append('tokens beyond the model vocabulary that are not byte tokens')

    compared = 0
    for name, data in expected.items():
        t = by_name.get(name)
        if t is None:
            problems.append(f'tensor {name} (from the source) is missing')
            continue
        shape = [int(x) for x in reversed(t.shape.tolist())]
        if shape != list(data.shape):
            problems.append(f'tensor {name}: shape {shape}, source {list(data.shape)}')
            continue
        want = gguf.quants.quantize(data, t.tensor_type) if t.tensor_type != GGMLQuantizationType.F32 else data
        got = np.asarray(t.data)
        if want.tobytes() != got.tobytes():
            diff = np.abs(gguf.quants.dequantize(got, t.tensor_type).reshape(-1) - data.reshape(-1)).max()
            problems.append(f'tensor {name} ({t.tensor_type.name}): bytes differ from gguf-py quantize() of the source (max |diff| {diff})')
            continue
        compared += 1
    for name in by_name:
        if name not in expected and name != 'rope_freqs.weight':
            problems.append(f'tensor {name} has no source')

    # tokenizer against tokenizer.json
    tj = json.load(open(f"{entry['model_dir']}/tokenizer.json"))
    tokens = field_value(r, 'tokenizer.ggml.tokens')
    vocab = dict(tj['model']['vocab'])
    for a in tj.get('added_tokens', []):
        vocab[a['content']] = a['id']
    for text, i in vocab.items():
        if tokens[i] != text:
            problems.append(f'token {i}: {tokens[i]!r}, tokenizer.json {text!r}')
            break
    merges = tj['model'].get('merges', [])
    if field_value(r, 'tokenizer.ggml.model') == 'gpt2':
        want = [m if isinstance(m, str) else ' '.join(m) for m in merges]
        if field_value(r, 'tokenizer.ggml.merges') != want:
            problems.append('merges differ from tokenizer.json')
    types = field_value(r, 'tokenizer.ggml.token_type')
    for a in tj.get('added_tokens', []):
        if a.get('special') and types[a['id']] not in (gguf.TokenType.CONTROL, gguf.TokenType.UNKNOWN):
            problems.append(f"special token {a['content']} has token type {types[a['id']]}")

    return {
        'sha256': entry.get('sha256'),
        'architecture': arch_name,
        'file_type': int(field_value(r, 'general.file_type')),
        'keys': dict(sorted(keys.items())),
        'tensors': tensors,
        'tokens': len(tokens),
        'tensors_compared_bytewise': compared,
        'problems': problems,
    }


def main():
    manifest = json.load(open(sys.argv[1]))
    report = {'gguf_py_version': importlib.metadata.version('gguf'), 'files': {}}
    bad = 0
    for entry in manifest:
        res = check(entry)
        report['files'][entry['name']] = res
        bad += len(res['problems'])
        print(f"{entry['name']}: {res.get('tensors_compared_bytewise', 0)} tensors byte-equal, {len(res['problems'])} problems", file=sys.stderr)
        for p in res['problems']:
            print(f'  {p}', file=sys.stderr)
    with open(sys.argv[2], 'w') as f:
        json.dump(report, f, indent=1)
        f.write('\n')
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
