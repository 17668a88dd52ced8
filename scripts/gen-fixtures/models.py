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

Issue 22's architectures (rope scaling, Gemma 2/3, Phi-3, sliding windows, NoPE layers) are in NEW_FIXTURES; their
records add "features" (what the config exercises), "attnImplementation" (eager where SDPA lacks a feature:
softcapping), "ablations" (max |logits - logits of the same weights with that feature switched off| on the padded
batch: proof that the feature changes the result) and "notes". Regenerate some fixtures only with
    ~/.cache/sftkit/pyref/bin/python scripts/gen-fixtures/models.py --only llama3-rope,mistral
(the five original fixtures and their -lora dirs are not touched by --only runs that do not name them).
The rotary modules of transformers are stateful for dynamic NTK (they keep the largest length seen): every forward
and every generate call here starts from the initial frequencies (reset_rope), so a record depends only on its own
inputs.
"""
import copy
import json
import os
import sys

# scripts/gen-fixtures/safetensors.py would shadow the safetensors package
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import numpy as np
import safetensors
import torch
import transformers
from transformers import (AutoModelForCausalLM, Gemma2Config, Gemma3TextConfig, GPT2Config, LlamaConfig, MistralConfig,
                          Phi3Config, Qwen2Config, Qwen3Config, SmolLM3Config)

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


def new_fixtures():
    """Issue 22: name -> dict(cfg, attn, features, ablations: {feature: config overrides that switch it off},
    notes). 3 layers everywhere (patterns show both kinds), T = 12 > sliding window 4, greedy generation to
    position 16 (prompt 6 + 10 new), so the KV cache runs past the window."""
    common = dict(vocab_size=VOCAB, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    base = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, rms_norm_eps=1e-6, **common)
    # head_dim 16 (2 x hidden / heads): 8 rotary frequencies, so every rope scaling has frequencies in each regime
    rope_llama = dict(num_attention_heads=4, num_key_value_heads=2, head_dim=16, tie_word_embeddings=False, **base)
    f = {}
    f["llama3-rope"] = dict(
        cfg=LlamaConfig(max_position_embeddings=256, rope_parameters=dict(
            rope_type="llama3", rope_theta=10000.0, factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
            original_max_position_embeddings=32), **rope_llama),
        features=["rope_type llama3 (factor 8, low_freq_factor 1, high_freq_factor 4, "
                  "original_max_position_embeddings 32): with head_dim 16 and theta 1e4 the 8 frequencies fall in "
                  "all three bands (wavelength 6.3 < 8 kept, 19.9 smoothed, 62.8 and longer divided by 8)",
                  "head_dim 16 != hidden/heads", "GQA 4/2", "untied head"],
        ablations={"rope scaling": dict(rope_parameters=dict(rope_type="default", rope_theta=10000.0))})
    f["llama-linear"] = dict(
        cfg=LlamaConfig(max_position_embeddings=64, rope_parameters=dict(rope_type="linear", rope_theta=10000.0,
                                                                         factor=4.0), **rope_llama),
        features=["rope_type linear (factor 4): inv_freq / 4 at every length"],
        ablations={"rope scaling": dict(rope_parameters=dict(rope_type="default", rope_theta=10000.0))})
    f["llama-dynamic"] = dict(
        cfg=LlamaConfig(max_position_embeddings=8, rope_parameters=dict(rope_type="dynamic", rope_theta=10000.0,
                                                                         factor=4.0), **rope_llama),
        features=["rope_type dynamic (NTK, factor 4) with max_position_embeddings 8: the padded batch (positions "
                  "0..11) and greedy generation past position 7 use a rescaled base; the packed batch (documents of "
                  "at most 7 tokens) does not"],
        ablations={"rope scaling": dict(rope_parameters=dict(rope_type="default", rope_theta=10000.0))},
        notes=["transformers computes the dynamic base per forward call from seq_len = max(position_ids) + 1 over "
               "the WHOLE batch (clamped below by max_position_embeddings): the right-padded row of 8 real tokens "
               "uses the base of length 12 because row 0 reaches position 11",
               "during generation each step recomputes the base from its own position, and the cached keys keep "
               "the rotation they were given when written (no re-rotation)",
               "transformers' rotary module is stateful (growth-only cache of the largest length); this generator "
               "resets it before every call, so the record is the stateless per-call rule above"],
        seed=150)  # the default seed gives a greedy near-tie (top-2 gap 1.3e-4)
    f["llama-yarn"] = dict(
        cfg=LlamaConfig(max_position_embeddings=256, rope_parameters=dict(
            rope_type="yarn", rope_theta=10000.0, factor=4.0, original_max_position_embeddings=64), **rope_llama),
        features=["rope_type yarn (factor 4, original_max_position_embeddings 64, beta_fast 32 / beta_slow 1 "
                  "defaults, truncate default true): ramp over dims [0, 3) gives extrapolation weights "
                  "1, 2/3, 1/3, 0, ...", "attention factor 0.1 ln 4 + 1 = 1.1386 multiplies cos and sin"],
        ablations={"rope scaling": dict(rope_parameters=dict(rope_type="default", rope_theta=10000.0))})
    gemma_base = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, rms_norm_eps=1e-6,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=12,
                      sliding_window=4, max_position_embeddings=64, hidden_activation="gelu_pytorch_tanh",
                      tie_word_embeddings=True, **common)
    f["gemma2"] = dict(
        cfg=Gemma2Config(rope_parameters=dict(rope_type="default", rope_theta=10000.0),
                         attn_logit_softcapping=5.0, final_logit_softcapping=3.0, **gemma_base),
        attn="eager",
        features=["RMSNorm x * (1 + w) in fp32", "embeddings * sqrt(32) (in the weight dtype)",
                  "four norms per block (input, post_attention, pre_feedforward, post_feedforward)",
                  "layer_types sliding/full/sliding (default (i+1) % 2 pattern), sliding_window 4 < T 12",
                  "query_pre_attn_scalar 12 != head_dim 16 (scale 12^-0.5)",
                  "attn_logit_softcapping 5, final_logit_softcapping 3 (small, so that they change the result)",
                  "gelu_pytorch_tanh gated MLP", "tied head", "GQA 4/2"],
        ablations={"attention softcapping": dict(attn_logit_softcapping=None),
                   "final logit softcapping": dict(final_logit_softcapping=None),
                   "sliding window": dict(sliding_window=64)},
        zero_centered_norms=True)
    f["gemma3-text"] = dict(
        cfg=Gemma3TextConfig(layer_types=["sliding_attention", "full_attention", "sliding_attention"],
                             rope_parameters={"sliding_attention": dict(rope_type="default", rope_theta=10000.0),
                                              "full_attention": dict(rope_type="linear", rope_theta=1000000.0,
                                                                     factor=4.0)},
                             **gemma_base),
        features=["Gemma3ForCausalLM (model_type gemma3_text)", "q_norm / k_norm (Gemma RMSNorm over head_dim, "
                  "before RoPE)", "layer_types sliding/full/sliding, sliding_window 4",
                  "local rope theta 1e4 (rope_local_base_freq) != global 1e6 (rope_theta)",
                  "linear rope scaling factor 4 on full_attention layers only (as Gemma 3 4B+)",
                  "query_pre_attn_scalar 12 != head_dim 16", "RMSNorm (1 + w), four norms per block",
                  "embeddings * sqrt(32)", "no softcapping", "tied head", "GQA 4/2"],
        ablations={"sliding window": dict(sliding_window=64),
                   "local rope base": dict(rope_parameters={
                       "sliding_attention": dict(rope_type="default", rope_theta=1000000.0),
                       "full_attention": dict(rope_type="linear", rope_theta=1000000.0, factor=4.0)}),
                   "global rope scaling": dict(rope_parameters={
                       "sliding_attention": dict(rope_type="default", rope_theta=10000.0),
                       "full_attention": dict(rope_type="default", rope_theta=1000000.0)})},
        zero_centered_norms=True)
    long_f = [1.0, 1.5, 4.0, 8.0]
    short_f = [1.0, 1.1, 1.3, 1.6]
    f["phi3"] = dict(
        cfg=Phi3Config(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2,
                       num_key_value_heads=1, rms_norm_eps=1e-5, max_position_embeddings=64,
                       original_max_position_embeddings=8, tie_word_embeddings=False,
                       rope_parameters=dict(rope_type="longrope", rope_theta=10000.0, partial_rotary_factor=0.5,
                                            short_factor=short_f, long_factor=long_f),
                       **common),
        features=["fused qkv_proj [q; k; v] rows and gate_up_proj [gate; up] rows",
                  "partial_rotary_factor 0.5: RoPE on the first 8 of 16 head dims (rotate_half inside them)",
                  "rope_type longrope: short_factor for seq_len <= original_max_position_embeddings 8, long_factor "
                  "beyond; factor = max_position_embeddings / original = 8 -> cos/sin * sqrt(1 + ln 8 / ln 8)",
                  "the padded batch (positions to 11) uses long factors, the packed batch short ones; greedy "
                  "generation switches from short to long at position 8", "GQA 2/1", "untied head"],
        ablations={"longrope factors": dict(rope_parameters=dict(rope_type="default", rope_theta=10000.0,
                                                                 partial_rotary_factor=0.5))},
        notes=["longrope chooses per forward call from seq_len = max(position_ids) + 1 over the whole batch; the "
               "attention factor sqrt(2) applies at every length",
               "generation is recorded with use_cache=False (every step re-runs the whole sequence): transformers "
               "intends, when the sequence (left padding included) first reaches original_max_position_embeddings "
               "+ 1 tokens, to drop the KV cache and re-encode everything with the long factors "
               "(Phi3ForCausalLM.prepare_inputs_for_generation), but 5.18 then runs only the newest token without "
               "any context (checked: its cached generate equals the last token alone at position 8); the intended "
               "rule (re-prefill at the switch, then cache as usual) gives exactly the no-cache tokens"],
        generate_use_cache=False)
    f["mistral"] = dict(
        cfg=MistralConfig(num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                          sliding_window=4, tie_word_embeddings=False,
                          rope_parameters=dict(rope_type="default", rope_theta=10000.0), **base),
        features=["sliding_window 4 < T 12 on every layer", "GQA 4/2", "untied head"],
        ablations={"sliding window": dict(sliding_window=None)})
    f["qwen2-sliding"] = dict(
        cfg=Qwen2Config(num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                        use_sliding_window=True, sliding_window=4, max_window_layers=1, tie_word_embeddings=False,
                        rope_parameters=dict(rope_type="default", rope_theta=1000000.0), **base),
        features=["use_sliding_window true, sliding_window 4, max_window_layers 1: layer_types full/sliding/sliding "
                  "(layers i >= max_window_layers slide)", "q/k/v bias", "GQA 4/2", "untied head"],
        ablations={"sliding window": dict(use_sliding_window=False, layer_types=None)})
    f["smollm3"] = dict(
        cfg=SmolLM3Config(num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                          no_rope_layers=[1, 0, 1], tie_word_embeddings=True,
                          rope_parameters=dict(rope_type="default", rope_theta=10000.0), **base),
        features=["no_rope_layers [1, 0, 1]: 1 = the layer applies RoPE, 0 = NoPE (layer 1 has no positions)",
                  "GQA 4/2", "tied head"],
        ablations={"NoPE layer": dict(no_rope_layers=[1, 1, 1])})
    return f


def randomize(model, gen, zero_centered_norms=False):
    # Larger than HF's init so that logits are far from uniform (greedy decoding must not sit on near-ties).
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or ".ln_" in name or name.endswith("ln_f.weight"):
                if name.endswith(".weight"):
                    # Gemma's RMSNorm scales by (1 + w): w near 0 is the same model as a Llama norm near 1
                    p.copy_((0.0 if zero_centered_norms else 1.0) + 0.1 * torch.randn(p.shape, generator=gen))
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


def legacy_config(cfg):
    """config.json in the 4.x key layout of hub checkpoints: rope_scaling (null for plain rope) + top-level
    rope_theta; Gemma 3's rope_local_base_freq and sliding_window_pattern; Phi-3's top-level
    original_max_position_embeddings and partial_rotary_factor; no layer_types. Both spellings of the type key occur
    on the hub ("rope_type": llama3 in Llama 3.1, linear in Gemma 3; "type": yarn in Qwen2.5, longrope in Phi-3)."""
    c = copy.deepcopy(cfg)
    rp = c.pop("rope_parameters")
    mt = c["model_type"]
    c.pop("layer_types", None)
    if mt == "gemma3_text":
        c["rope_theta"] = rp["full_attention"]["rope_theta"]
        c["rope_local_base_freq"] = rp["sliding_attention"]["rope_theta"]
        full = {k: v for k, v in rp["full_attention"].items() if k != "rope_theta"}
        c["rope_scaling"] = None if full.get("rope_type") == "default" else full
        c.pop("_sliding_window_pattern", None)
        c["sliding_window_pattern"] = 2  # layers 0, 2 slide, layer 1 is full: the fixture's layer_types
        return c
    c["rope_theta"] = rp.pop("rope_theta")
    if "partial_rotary_factor" in rp:
        c["partial_rotary_factor"] = rp.pop("partial_rotary_factor")
    if mt == "phi3":
        rp.pop("original_max_position_embeddings", None)  # the top-level key is the one Phi-3 checkpoints carry
    if rp.get("rope_type") == "default":
        c["rope_scaling"] = None
    else:
        if rp["rope_type"] in ("yarn", "longrope", "dynamic", "linear"):
            rp["type"] = rp.pop("rope_type")
        c["rope_scaling"] = rp
    return c


def reset_rope(model):
    """Back to the initial rotary frequencies (transformers' dynamic NTK keeps the largest length it has seen)."""
    for m in model.modules():
        if m.__class__.__name__.endswith("RotaryEmbedding"):
            for key in list(m._buffers):
                if key.endswith("original_inv_freq"):
                    prefix = key[:-len("original_inv_freq")]
                    m._buffers[prefix + "inv_freq"] = m._buffers[key].clone()
                    if hasattr(m, "original_max_seq_len"):
                        setattr(m, prefix + "max_seq_len_cached", m.original_max_seq_len)
                        if prefix:
                            m.max_seq_len_cached = m.original_max_seq_len


def ablation_diffs(model, cfg, spec, inp, attn):
    """Max |logits - logits of the same weights under a config with the feature switched off| (padded batch)."""
    out = {}
    state = model.state_dict()
    with torch.no_grad():
        reset_rope(model)
        ref = model(input_ids=inp["ids"], attention_mask=inp["mask"]).logits
        valid = inp["mask"].bool()
        for feature, overrides in spec.get("ablations", {}).items():
            d = cfg.to_dict()
            d.update(copy.deepcopy(overrides))
            cfg2 = type(cfg).from_dict(d)
            cfg2._attn_implementation = attn
            other = AutoModelForCausalLM.from_config(cfg2, dtype=torch.float32)
            other.load_state_dict(state, strict=True)
            other.eval()
            reset_rope(other)
            lg = other(input_ids=inp["ids"], attention_mask=inp["mask"]).logits
            diff = float((lg - ref).abs()[valid].max())
            assert diff > 1e-3, f"{feature}: switching it off does not change the logits ({diff})"
            out[feature] = diff
    return out


def hf_packed_vs_separate(model, inp, packed_logits, packed_valid):
    """transformers' own packed forward (position_ids restart, no attention mask) against the separate documents."""
    with torch.no_grad():
        reset_rope(model)
        lg = model(input_ids=inp["pids"], position_ids=inp["pos"], use_cache=False).logits
    return float((lg - packed_logits).abs()[packed_valid].max())


def make_fixture(name, cfg, idx, versions, spec=None):
    out_dir = os.path.join(ROOT, f"tiny-{name}")
    os.makedirs(out_dir, exist_ok=True)
    attn = (spec or {}).get("attn", "sdpa")
    cfg._attn_implementation = attn
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    gen = torch.Generator().manual_seed(1000 + idx)
    randomize(model, gen, zero_centered_norms=(spec or {}).get("zero_centered_norms", False))
    model.eval()  # no dropout; gradients still flow
    model.save_pretrained(out_dir)
    if spec:
        cfg_json = json.load(open(os.path.join(out_dir, "config.json")))
        with open(os.path.join(out_dir, "config.legacy.json"), "w") as f:
            json.dump(legacy_config(cfg_json), f, indent=2, sort_keys=True)
            f.write("\n")
    inp = gen_inputs(2000 + idx)
    fresh = (lambda: reset_rope(model)) if spec else (lambda: None)

    # padded batch: logits + loss + grads
    model.zero_grad()
    fresh()
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
        if spec:
            packed_logits, packed_valid, packed_loss, packed_count = packed_reference_fresh(model, inp)
        else:
            packed_logits, packed_valid, packed_loss, packed_count = packed_reference(model, inp)
        # greedy: one prompt, then a left-padded batch of two prompts
        prompt = [1, 17, 42, 99, 5, 63]
        gen_kw = {} if (spec or {}).get("generate_use_cache", True) else {"use_cache": False}
        fresh()
        g1 = model.generate(torch.tensor([prompt]), max_new_tokens=10, do_sample=False, eos_token_id=None,
                            pad_token_id=0, **gen_kw)
        p_a, p_b = [1, 33, 7, 81, 120], [1, 64, 9]
        batch_ids = torch.tensor([p_a, [0, 0] + p_b])
        batch_mask = torch.tensor([[1] * 5, [0, 0, 1, 1, 1]])
        fresh()
        g2 = model.generate(batch_ids, attention_mask=batch_mask, max_new_tokens=8, do_sample=False,
                            eos_token_id=None, pad_token_id=0, **gen_kw)

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
    if spec:
        record["attnImplementation"] = attn
        record["features"] = spec["features"]
        if getattr(cfg, "layer_types", None):
            record["layerTypes"] = list(cfg.layer_types)
        record["ablations"] = ablation_diffs(model, cfg, spec, inp, attn)
        record["hfPackedVsSeparate"] = hf_packed_vs_separate(model, inp, packed_logits, packed_valid)
        record["notes"] = spec.get("notes", [])
        record["greedyMargins"] = greedy_margins(model, prompt, batch_ids, batch_mask, gen_kw)
        record["generateUseCache"] = not gen_kw
        if spec.get("zero_centered_norms"):  # Gemma: sqrt(hidden) as a tensor in the weight dtype
            es = model.model.embed_tokens.embed_scale
            record["embedScale"] = {str(dt).replace("torch.", ""): float(es.to(dt))
                                    for dt in (torch.float32, torch.bfloat16, torch.float16)}
    with open(os.path.join(out_dir, "parity.json"), "w") as f:
        json.dump(record, f)
    extra = f" ablations {record['ablations']} hfPacked {record['hfPackedVsSeparate']:.2e}" if spec else ""
    print(name, "loss", float(loss_sum), count, "packed", packed_loss, packed_count, "gen", g1[0].tolist(),
          g2.tolist(), extra)


def greedy_margins(model, prompt, batch_ids, batch_mask, gen_kw):
    """Smallest gap between the top two logits over the greedy steps (a near-tie would make the generation record
    fragile at the logits tolerance); generation is asserted to be the same as the recorded one."""
    out = {}
    with torch.no_grad():
        for key, ids, mask, n in (("single", torch.tensor([prompt]), None, 10), ("batch", batch_ids, batch_mask, 8)):
            reset_rope(model)
            g = model.generate(ids, attention_mask=mask, max_new_tokens=n, do_sample=False, eos_token_id=None,
                               pad_token_id=0, output_logits=True, return_dict_in_generate=True, **gen_kw)
            top2 = torch.stack([lg.float().topk(2, dim=-1).values for lg in g.logits])  # steps, B, 2
            out[key] = float((top2[..., 0] - top2[..., 1]).min())
            assert out[key] > 1e-3, f"greedy near-tie ({key}: {out[key]})"
    return out


def packed_reference_fresh(model, inp):
    """packed_reference with the rotary state reset before every document."""
    orig = model.forward

    def forward(*a, **k):
        reset_rope(model)
        return orig(*a, **k)
    model.forward = forward
    try:
        return packed_reference(model, inp)
    finally:
        model.forward = orig


def main():
    only = None
    if "--only" in sys.argv:
        only = set(sys.argv[sys.argv.index("--only") + 1].split(","))
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    versions = {"torch": torch.__version__, "transformers": transformers.__version__,
                "safetensors": safetensors.__version__, "numpy": np.__version__, "python": sys.version.split()[0]}
    for idx, (name, cfg) in enumerate(make_configs().items()):
        if only is None or name in only:
            make_fixture(name, cfg, idx, versions)
    # new fixtures: seeds 1100 + k / 2100 + k (the originals use 1000 + idx / 2000 + idx)
    for k, (name, spec) in enumerate(new_fixtures().items()):
        if only is None or name in only:
            make_fixture(name, spec["cfg"], spec.get("seed", 100 + k), versions, spec)
    unknown = (only or set()) - set(make_configs()) - set(new_fixtures())
    if unknown:
        sys.exit(f"unknown fixture names: {sorted(unknown)}")


if __name__ == "__main__":
    main()
