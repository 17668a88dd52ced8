"""Golden fixtures for the native models (test/parity/models.test.ts).

Run by hand, never by CI:  ~/.cache/sftkit/pyref/bin/python scripts/gen-fixtures/models.py
Writes test/fixtures/models/tiny-<name>/ (save_pretrained: config.json, model.safetensors, generation_config.json)
and test/fixtures/models/tiny-<name>/parity.json with, for fixed inputs:
  - logits of a right-padded batch and of a packed batch (packed reference = each document run on its own),
  - the masked loss (sum over label tokens, count) of both batches,
  - per-parameter gradient norms after one backward of the padded loss SUM,
  - after one torch.optim.AdamW step (lr 1e-3, betas .9/.999, eps 1e-8, weight decay 0.01 except biases, norms and
    embeddings, clip_grad_norm_ 1.0): the pre-clip grad norm and, per parameter, the norm of (after - before) and
    its first values (HF layout, flattened),
  - greedy generations: one prompt, and a left-padded batch of two prompts.
"""
import json
import os
import sys

# scripts/gen-fixtures/safetensors.py would shadow the safetensors package
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import numpy as np
import safetensors
import torch
import transformers
from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig, Qwen2Config, Qwen3Config

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "fixtures", "models")
VOCAB = 128


def make_configs():
    common = dict(vocab_size=VOCAB, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    llama_like = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, max_position_embeddings=64,
                      rms_norm_eps=1e-6, **common)
    return {
        "gpt2": GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=64, **common),
        # tied + GQA (4 query heads share 2 kv heads)
        "llama": LlamaConfig(num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                             rope_theta=10000.0, **llama_like),
        # untied, MHA, other rope theta
        "llama-untied": LlamaConfig(num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=False,
                                    rope_theta=500000.0, **llama_like),
        # q/k/v bias, GQA, untied
        "qwen2": Qwen2Config(num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
                             rope_theta=1000000.0, **llama_like),
        # q/k norm, head_dim (16) != hidden / heads (8), GQA, tied
        "qwen3": Qwen3Config(num_attention_heads=4, num_key_value_heads=2, head_dim=16, tie_word_embeddings=True,
                             rope_theta=1000000.0, **llama_like),
    }


def randomize(model, gen):
    # Larger than HF's init so that logits are far from uniform (greedy decoding must not sit on near-ties).
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or ".ln_" in name or name.endswith("ln_f.weight"):
                if name.endswith(".weight"):
                    p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
                else:
                    p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=gen))


def masked_loss_sum(logits, labels):
    shift_logits = logits[:, :-1, :].reshape(-1, logits.shape[-1]).float()
    shift_labels = labels[:, 1:].reshape(-1)
    loss = torch.nn.functional.cross_entropy(shift_logits, shift_labels, ignore_index=-100, reduction="sum")
    return loss, int((shift_labels != -100).sum())


def no_decay(name):
    return name.endswith(".bias") or "norm" in name or ".ln_" in name or "ln_f" in name or \
        "embed_tokens" in name or "wte" in name or "wpe" in name


def gen_inputs(seed):
    g = torch.Generator().manual_seed(seed)
    B, T = 2, 12
    ids = torch.randint(3, VOCAB, (B, T), generator=g)
    # padded: row 0 full, row 1 has 8 real tokens then right padding (pad id 0)
    lens = [12, 8]
    mask = torch.zeros(B, T, dtype=torch.long)
    labels = ids.clone()
    for b, n in enumerate(lens):
        mask[b, :n] = 1
        ids[b, n:] = 0
        labels[b, n:] = -100
    labels[:, :3] = -100  # a "prompt" without labels
    # packed: row 0 = docs [5, 7], row 1 = docs [4, 3, 2] + 3 pad; labels -100 at each document start and on pad
    docs = [[5, 7], [4, 3, 2]]
    pids = torch.randint(3, VOCAB, (B, T), generator=g)
    plabels = pids.clone()
    pos = torch.zeros(B, T, dtype=torch.long)
    for b, ds in enumerate(docs):
        s = 0
        for n in ds:
            pos[b, s:s + n] = torch.arange(n)
            plabels[b, s] = -100
            s += n
        pids[b, s:] = 0
        plabels[b, s:] = -100
        pos[b, s:] = torch.arange(T - s)
    return dict(ids=ids, mask=mask, labels=labels, lens=lens, pids=pids, plabels=plabels, pos=pos, docs=docs)


def packed_reference(model, inp):
    """Each document on its own; packed logits rows = per-document logits (pad rows: not compared)."""
    B, T = inp["pids"].shape
    logits = torch.zeros(B, T, VOCAB)
    valid = torch.zeros(B, T, dtype=torch.bool)
    loss_sum = 0.0
    count = 0
    for b, ds in enumerate(inp["docs"]):
        s = 0
        for n in ds:
            out = model(input_ids=inp["pids"][b:b + 1, s:s + n]).logits
            logits[b, s:s + n] = out[0].detach()
            valid[b, s:s + n] = True
            ls, c = masked_loss_sum(out, inp["plabels"][b:b + 1, s:s + n])
            loss_sum += float(ls)
            count += c
            s += n
    return logits, valid, loss_sum, count


def hf_layout(name, t):
    return t.detach().float().contiguous().reshape(-1)


def main():
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    versions = {"torch": torch.__version__, "transformers": transformers.__version__,
                "safetensors": safetensors.__version__, "numpy": np.__version__, "python": sys.version.split()[0]}
    for idx, (name, cfg) in enumerate(make_configs().items()):
        out_dir = os.path.join(ROOT, f"tiny-{name}")
        os.makedirs(out_dir, exist_ok=True)
        cfg._attn_implementation = "sdpa"
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
        gen = torch.Generator().manual_seed(1000 + idx)
        randomize(model, gen)
        model.eval()  # no dropout; gradients still flow
        model.save_pretrained(out_dir)
        inp = gen_inputs(2000 + idx)

        # padded batch: logits + loss + grads
        model.zero_grad()
        out = model(input_ids=inp["ids"], attention_mask=inp["mask"])
        loss_sum, count = masked_loss_sum(out.logits, inp["labels"])
        loss_sum.backward()
        grad_norms = {n: float(p.grad.double().norm()) for n, p in model.named_parameters()}
        padded_logits = out.logits.detach()

        # one AdamW step on those grads
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        decay = [p for n, p in model.named_parameters() if not no_decay(n)]
        nodecay = [p for n, p in model.named_parameters() if no_decay(n)]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": nodecay, "weight_decay": 0.0}],
                                lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
        pre_clip = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))
        opt.step()
        adamw = {}
        for n, p in model.named_parameters():
            d = (p.detach() - before[n]).double()
            adamw[n] = {"deltaNorm": float(d.norm()), "deltaHead": [float(x) for x in d.reshape(-1)[:16]],
                        "decay": not no_decay(n)}
        with torch.no_grad():  # back to the saved weights for the remaining records
            for n, p in model.named_parameters():
                p.copy_(before[n])

        with torch.no_grad():
            packed_logits, packed_valid, packed_loss, packed_count = packed_reference(model, inp)
            # greedy: one prompt, then a left-padded batch of two prompts
            prompt = [1, 17, 42, 99, 5, 63]
            g1 = model.generate(torch.tensor([prompt]), max_new_tokens=10, do_sample=False, eos_token_id=None,
                                pad_token_id=0)
            p_a, p_b = [1, 33, 7, 81, 120], [1, 64, 9]
            batch_ids = torch.tensor([p_a, [0, 0] + p_b])
            batch_mask = torch.tensor([[1] * 5, [0, 0, 1, 1, 1]])
            g2 = model.generate(batch_ids, attention_mask=batch_mask, max_new_tokens=8, do_sample=False,
                                eos_token_id=None, pad_token_id=0)

        def rows(t, valid):
            return [[[float(x) for x in t[b, i]] if valid[b][i] else None for i in range(t.shape[1])]
                    for b in range(t.shape[0])]

        padded_valid = (inp["mask"] == 1).tolist()
        record = {
            "versions": versions,
            "arch": cfg.model_type,
            "padded": {
                "shape": list(inp["ids"].shape),
                "inputIds": inp["ids"].reshape(-1).tolist(),
                "attentionMask": inp["mask"].reshape(-1).tolist(),
                "labels": inp["labels"].reshape(-1).tolist(),
                "logits": rows(padded_logits, padded_valid),  # null rows = padding, not compared
                "lossSum": float(loss_sum),
                "tokens": count,
            },
            "packed": {
                "shape": list(inp["pids"].shape),
                "inputIds": inp["pids"].reshape(-1).tolist(),
                "positionIds": inp["pos"].reshape(-1).tolist(),
                "labels": inp["plabels"].reshape(-1).tolist(),
                "docLengths": inp["docs"],
                "logits": rows(packed_logits, packed_valid.tolist()),
                "lossSum": packed_loss,
                "tokens": packed_count,
            },
            "gradNorms": grad_norms,
            "adamw": {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weightDecay": 0.01, "maxGradNorm": 1.0,
                      "gradNorm": pre_clip, "params": adamw},
            "generate": {
                "single": {"prompt": prompt, "maxNewTokens": 10, "output": g1[0, len(prompt):].tolist()},
                "batch": {"prompts": [p_a, p_b], "maxNewTokens": 8, "padId": 0,
                          "output": g2[:, batch_ids.shape[1]:].tolist()},
            },
        }
        with open(os.path.join(out_dir, "parity.json"), "w") as f:
            json.dump(record, f)
        print(name, "loss", float(loss_sum), count, "packed", packed_loss, packed_count, "gen", g1[0].tolist())


if __name__ == "__main__":
    main()
