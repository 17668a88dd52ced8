"""An independent reference for issue 22's architectures, written from test/fixtures/models/NEW-ARCHITECTURES.md
(not from transformers' classes): plain torch, config.json + model.safetensors in, checked against each fixture's
parity.json (made by transformers 5.x through models.py):
  - logits of the right-padded batch and of the packed batch (ONE forward over the packed rows: block-diagonal
    causal mask, restarted positions), masked loss sums, per-parameter gradient norms of the padded loss;
  - greedy generations (single prompt, left-padded batch of two) with a KV cache that stores rotated keys.
It also reads the legacy config keys real checkpoints carry (rope_scaling, rope_theta, rope_local_base_freq,
sliding_window_pattern, top-level original_max_position_embeddings / partial_rotary_factor, no layer_types): each
fixture is checked a second time from its config.legacy.json (written by models.py), and transformers is shown to
read that file to the same logits.

Run by hand:  ~/.cache/sftkit/pyref/bin/python scripts/gen-fixtures/check_new_archs.py [name ...]
"""
import copy
import json
import math
import os
import sys

sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import torch
from safetensors.torch import load_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "fixtures", "models")
NAMES = ["llama3-rope", "llama-linear", "llama-dynamic", "llama-yarn", "gemma2", "gemma3-text", "phi3", "mistral",
         "qwen2-sliding", "smollm3"]
GEMMA = ("gemma2", "gemma3_text")


# ------------------------------------------------------------------------------------------------ config rules

def rope_params(cfg):
    """{layer_type or None: dict} with rope_type, rope_theta and the scaling keys, from either config form."""
    mt = cfg["model_type"]
    rp = copy.deepcopy(cfg.get("rope_parameters") or cfg.get("rope_scaling") or {})
    nested = mt == "gemma3_text"
    if nested:
        if "full_attention" not in rp:  # legacy: rope_scaling applies to the global (full) layers only
            rp = {"full_attention": rp, "sliding_attention": {}}
        rp["full_attention"].setdefault("rope_theta", cfg.get("rope_theta", 1_000_000.0))
        rp["sliding_attention"].setdefault("rope_theta", cfg.get("rope_local_base_freq", 10_000.0))
        for v in rp.values():
            v.setdefault("rope_type", v.get("type", "default"))
        return rp
    rp.setdefault("rope_type", rp.get("type", "default"))
    if mt == "phi3" and rp["rope_type"] in ("su", "yarn"):
        rp["rope_type"] = "longrope"
    rp.setdefault("rope_theta", cfg.get("rope_theta", 10_000.0))
    if "partial_rotary_factor" in cfg and cfg["partial_rotary_factor"] is not None:
        rp.setdefault("partial_rotary_factor", cfg["partial_rotary_factor"])
    if rp["rope_type"] in ("llama3", "yarn", "longrope"):
        if cfg.get("original_max_position_embeddings") is not None:  # phi3: the top-level key wins
            rp["original_max_position_embeddings"] = cfg["original_max_position_embeddings"]
        rp.setdefault("original_max_position_embeddings", cfg["max_position_embeddings"])
    return {None: rp}


def layer_types(cfg):
    mt, n = cfg["model_type"], cfg["num_hidden_layers"]
    if cfg.get("layer_types"):
        return list(cfg["layer_types"])
    if mt == "gemma2":
        return ["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(n)]
    if mt == "gemma3_text":
        p = cfg.get("sliding_window_pattern", 6)
        return ["sliding_attention" if (i + 1) % p else "full_attention" for i in range(n)]
    if mt == "qwen2":
        sw = cfg.get("sliding_window") if cfg.get("use_sliding_window") else None
        return ["sliding_attention" if sw is not None and i >= cfg.get("max_window_layers", 28) else "full_attention"
                for i in range(n)]
    if mt == "mistral":
        return ["sliding_attention" if cfg.get("sliding_window") is not None else "full_attention"] * n
    if mt == "phi3":
        return ["sliding_attention" if cfg.get("sliding_window") is not None else "full_attention"] * n
    return ["full_attention"] * n


def window_of(cfg):
    if cfg["model_type"] in ("qwen2", "smollm3") and not cfg.get("use_sliding_window"):
        return None
    return cfg.get("sliding_window")


def head_dim_of(cfg):
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


# ------------------------------------------------------------------------------------------------ rope

def inv_freq_and_scale(cfg, rp, seq_len):
    """Inverse frequencies (dim/2) and the cos/sin multiplier for a forward whose largest position is seq_len-1."""
    hd = head_dim_of(cfg)
    dim = int(hd * rp.get("partial_rotary_factor", 1.0))
    theta = rp["rope_theta"]
    t = rp["rope_type"]
    exps = torch.arange(0, dim, 2, dtype=torch.int64).float() / dim
    inv = 1.0 / (theta ** exps)
    if t == "default":
        return inv, 1.0
    factor = rp.get("factor")
    if t == "linear":
        return inv / factor, 1.0
    if t == "dynamic":
        mpe = cfg["max_position_embeddings"]
        L = max(seq_len, mpe)
        base = theta * ((factor * L / mpe) - (factor - 1)) ** (dim / (dim - 2))
        return 1.0 / (base ** exps), 1.0
    if t == "llama3":
        old = rp["original_max_position_embeddings"]
        lo, hi = rp["low_freq_factor"], rp["high_freq_factor"]
        wl = 2 * math.pi / inv
        out = torch.where(wl > old / lo, inv / factor, inv)
        smooth = (old / wl - lo) / (hi - lo)
        smoothed = (1 - smooth) * out / factor + smooth * out
        medium = ~(wl < old / hi) & ~(wl > old / lo)
        return torch.where(medium, smoothed, out), 1.0
    if t == "yarn":
        orig = rp["original_max_position_embeddings"]
        if factor is None:
            factor = cfg["max_position_embeddings"] / orig
        af = rp.get("attention_factor")
        mscale = lambda s, m=1: 1.0 if s <= 1 else 0.1 * m * math.log(s) + 1.0
        if af is None:
            ms, msa = rp.get("mscale"), rp.get("mscale_all_dim")
            af = mscale(factor, ms) / mscale(factor, msa) if (ms and msa) else mscale(factor)
        bf, bs = rp.get("beta_fast") or 32, rp.get("beta_slow") or 1
        corr = lambda rot: dim * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(theta))
        low, high = corr(bf), corr(bs)
        if rp.get("truncate", True):
            low, high = math.floor(low), math.ceil(high)
        low, high = max(low, 0), min(high, dim - 1)
        if low == high:
            high += 0.001
        ramp = ((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1)
        extra = 1 - ramp  # weight of the original (extrapolated) frequency
        return inv / factor * (1 - extra) + inv * extra, af
    if t == "longrope":
        orig = rp["original_max_position_embeddings"]
        if factor is None:
            factor = cfg["max_position_embeddings"] / orig
        af = rp.get("attention_factor")
        if af is None:
            af = 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(orig))
        ext = torch.tensor(rp["long_factor"] if seq_len > orig else rp["short_factor"], dtype=torch.float32)
        return 1.0 / (ext * theta ** exps), af
    raise ValueError(t)


def rotate(x, pos, inv, scale):
    """x: B, H, T, hd; pos: B, T. RoPE on the first 2 * len(inv) dims (rotate_half within them)."""
    rd = inv.shape[0] * 2
    f = pos[:, None, :, None].float() * inv[None, None, None, :]
    emb = torch.cat([f, f], dim=-1)
    cos, sin = emb.cos() * scale, emb.sin() * scale
    xr, xp = x[..., :rd], x[..., rd:]
    half = torch.cat([-xr[..., rd // 2:], xr[..., :rd // 2]], dim=-1)
    return torch.cat([xr * cos + half * sin, xp], dim=-1)


# ------------------------------------------------------------------------------------------------ model

class Ref:
    def __init__(self, d, cfg=None):
        self.cfg = cfg or json.load(open(os.path.join(d, "config.json")))
        self.w = {k: v.float().clone().requires_grad_(True) for k, v in load_file(os.path.join(d, "model.safetensors")).items()}
        c = self.cfg
        self.mt = c["model_type"]
        self.gemma = self.mt in GEMMA
        self.types = layer_types(c)
        self.window = window_of(c)
        self.rope = rope_params(c)
        self.hd = head_dim_of(c)
        self.H, self.KV = c["num_attention_heads"], c["num_key_value_heads"]
        self.eps = c["rms_norm_eps"]

    def W(self, k):
        if k == "lm_head.weight" and k not in self.w:
            return self.w["model.embed_tokens.weight"]
        return self.w[k]

    def norm(self, x, k):
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return y * (1.0 + self.W(k).float()) if self.gemma else self.W(k) * y

    def lin(self, x, k):
        y = x @ self.W(k + ".weight").t()
        b = self.w.get(k + ".bias")
        return y + b if b is not None else y

    def act(self, x):
        if self.gemma:
            return torch.nn.functional.gelu(x, approximate="tanh")
        return torch.nn.functional.silu(x)

    def rope_for(self, i):
        if self.mt == "smollm3" and not self.cfg["no_rope_layers"][i]:
            return None
        return self.rope[self.types[i]] if self.mt == "gemma3_text" else self.rope[None]

    def forward(self, ids, pos, allowed, cache=None):
        """ids, pos: B, T; allowed(layer_type) -> bool B, T, S (S = cached + T keys). cache: list per layer of
        (k, v) rotated, appended in place. Returns logits B, T, V."""
        c = self.cfg
        B, T = ids.shape
        x = self.W("model.embed_tokens.weight")[ids]
        if self.gemma:
            x = x * torch.tensor(c["hidden_size"] ** 0.5, dtype=torch.float32).to(x.dtype)
        seq_len = int(pos.max()) + 1  # one rule for the whole batch (dynamic, longrope)
        for i in range(c["num_hidden_layers"]):
            p = f"model.layers.{i}."
            h = self.norm(x, p + "input_layernorm.weight")
            if self.mt == "phi3":
                qkv = self.lin(h, p + "self_attn.qkv_proj")
                nq, nk = self.H * self.hd, self.KV * self.hd
                q, k, v = qkv[..., :nq], qkv[..., nq:nq + nk], qkv[..., nq + nk:]
            else:
                q, k, v = (self.lin(h, p + f"self_attn.{n}_proj") for n in "qkv")
            q = q.view(B, T, self.H, self.hd).transpose(1, 2)
            k = k.view(B, T, self.KV, self.hd).transpose(1, 2)
            v = v.view(B, T, self.KV, self.hd).transpose(1, 2)
            if self.mt == "gemma3_text":
                q = self.norm(q, p + "self_attn.q_norm.weight")
                k = self.norm(k, p + "self_attn.k_norm.weight")
            rp = self.rope_for(i)
            if rp is not None:
                inv, sc = inv_freq_and_scale(c, rp, seq_len)
                q, k = rotate(q, pos, inv, sc), rotate(k, pos, inv, sc)
            if cache is not None:
                if len(cache) <= i:
                    cache.append((k, v))
                else:
                    cache[i] = (torch.cat([cache[i][0], k], 2), torch.cat([cache[i][1], v], 2))
                k, v = cache[i]
            rep = self.H // self.KV
            k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
            scale = c["query_pre_attn_scalar"] ** -0.5 if self.gemma else self.hd ** -0.5
            s = (q @ k.transpose(2, 3)) * scale
            cap = c.get("attn_logit_softcapping")
            if cap:
                s = torch.tanh(s / cap) * cap
            s = s.masked_fill(~allowed(self.types[i])[:, None], float("-inf"))
            a = torch.softmax(s.float(), -1) @ v
            a = self.lin(a.transpose(1, 2).reshape(B, T, self.H * self.hd), p + "self_attn.o_proj")
            if self.gemma:
                a = self.norm(a, p + "post_attention_layernorm.weight")
                x = x + a
                h = self.norm(x, p + "pre_feedforward_layernorm.weight")
            else:
                x = x + a
                h = self.norm(x, p + "post_attention_layernorm.weight")
            if self.mt == "phi3":
                gu = self.lin(h, p + "mlp.gate_up_proj")
                g, u = gu.chunk(2, dim=-1)
                m = self.lin(u * self.act(g), p + "mlp.down_proj")
            else:
                m = self.lin(self.act(self.lin(h, p + "mlp.gate_proj")) * self.lin(h, p + "mlp.up_proj"), p + "mlp.down_proj")
            if self.gemma:
                m = self.norm(m, p + "post_feedforward_layernorm.weight")
            x = x + m
        x = self.norm(x, "model.norm.weight")
        logits = x @ self.W("lm_head.weight").t()
        cap = c.get("final_logit_softcapping")
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return logits


def mask_fn(ref, q_idx, k_idx, key_ok, doc_q=None, doc_k=None):
    """Allowed[b, t, s]: causal on cache indices, key not padding, same document, and for sliding layers
    q_idx - k_idx < window (a query at t sees t-window+1 .. t)."""
    def allowed(layer_type):
        m = (k_idx[None, None, :] <= q_idx[None, :, None]) & key_ok[:, None, :]
        if doc_q is not None:
            m = m & (doc_q[:, :, None] == doc_k[:, None, :])
        if layer_type == "sliding_attention" and ref.window is not None:
            m = m & (q_idx[None, :, None] - k_idx[None, None, :] < ref.window)
        # a padding query that may see nothing sees itself (finite, never read: pads are no real query's key)
        return m | (k_idx[None, None, :] == q_idx[None, :, None])
    return allowed


def loss_sum(logits, labels):
    lg = logits[:, :-1].reshape(-1, logits.shape[-1]).float()
    lb = labels[:, 1:].reshape(-1)
    return torch.nn.functional.cross_entropy(lg, lb, ignore_index=-100, reduction="sum")


def greedy(ref, prompts, n):
    """Left-padded batch; prefill then one token per step with the KV cache (positions: cumsum of the mask - 1)."""
    L = max(len(p) for p in prompts)
    B = len(prompts)
    ids = torch.tensor([[0] * (L - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (L - len(p)) + [1] * len(p) for p in prompts], dtype=torch.bool)
    pos = (mask.long().cumsum(-1) - 1).clamp(min=0)
    cache = []
    with torch.no_grad():
        idx = torch.arange(L)
        logits = ref.forward(ids, pos, mask_fn(ref, idx, idx, mask), cache)
        out = []
        orig = ref.rope[None].get("original_max_position_embeddings") if ref.mt == "phi3" else None
        for step in range(n):
            nxt = logits[:, -1].argmax(-1)
            out.append(nxt)
            S = mask.shape[1]
            ids = torch.cat([ids, nxt[:, None]], 1)
            mask = torch.cat([mask, torch.ones(B, 1, dtype=torch.bool)], 1)
            if orig is not None and S + 1 >= orig + 1 and S <= orig:
                # Phi-3 (longrope): when the sequence (left padding included) first reaches original + 1 tokens,
                # transformers drops the cache and runs the whole sequence again (all keys get the long factors)
                cache = []
                pos = (mask.long().cumsum(-1) - 1).clamp(min=0)
                idx = torch.arange(S + 1)
                logits = ref.forward(ids, pos, mask_fn(ref, idx, idx, mask), cache)
                pos = pos[:, -1:]
                continue
            pos = pos[:, -1:] + 1
            logits = ref.forward(nxt[:, None], pos, mask_fn(ref, torch.tensor([S]), torch.arange(S + 1), mask), cache)
    return torch.stack(out, 1).tolist()


def check(name, legacy=False):
    d = os.path.join(ROOT, f"tiny-{name}")
    rec = json.load(open(os.path.join(d, "parity.json")))
    cfg = json.load(open(os.path.join(d, "config.json")))
    ref = Ref(d, json.load(open(os.path.join(d, "config.legacy.json"))) if legacy else None)
    worst = {}

    def logits_diff(lg, case):
        m = 0.0
        for b, row in enumerate(case["logits"]):
            for t, want in enumerate(row):
                if want is not None:
                    m = max(m, float((lg[b, t] - torch.tensor(want)).abs().max()))
        return m

    # padded: positions 0..T-1 for every row (right padding), key padding mask
    P = rec["padded"]
    B, T = P["shape"]
    ids = torch.tensor(P["inputIds"]).view(B, T)
    am = torch.tensor(P["attentionMask"]).view(B, T).bool()
    labels = torch.tensor(P["labels"]).view(B, T)
    idx = torch.arange(T)
    lg = ref.forward(ids, idx.expand(B, T), mask_fn(ref, idx, idx, am))
    worst["padded logits"] = logits_diff(lg.detach(), P)
    ls = loss_sum(lg, labels)
    worst["padded loss (rel)"] = abs(float(ls.detach()) - P["lossSum"]) / P["lossSum"]
    ls.backward()
    g = 0.0
    for k, want in rec["gradNorms"].items():
        if k in ref.w:
            g = max(g, abs(float(ref.w[k].grad.double().norm()) - want) / max(want, 1e-12))
    worst["grad norms (rel)"] = g

    # packed: ONE forward, restarted positions, documents may not see each other
    K = rec["packed"]
    B, T = K["shape"]
    ids = torch.tensor(K["inputIds"]).view(B, T)
    pos = torch.tensor(K["positionIds"]).view(B, T)
    labels = torch.tensor(K["labels"]).view(B, T)
    doc = torch.full((B, T), -1)
    for b, ds in enumerate(K["docLengths"]):
        s = 0
        for j, n in enumerate(ds):
            doc[b, s:s + n] = j
            s += n
    with torch.no_grad():
        lg = ref.forward(ids, pos, mask_fn(ref, torch.arange(T), torch.arange(T), doc >= 0, doc, doc))
    worst["packed logits"] = logits_diff(lg, K)
    worst["packed loss (rel)"] = abs(float(loss_sum(lg, labels)) - K["lossSum"]) / K["lossSum"]

    G = rec["generate"]
    ok1 = greedy(ref, [G["single"]["prompt"]], G["single"]["maxNewTokens"])[0] == G["single"]["output"]
    ok2 = greedy(ref, G["batch"]["prompts"], G["batch"]["maxNewTokens"]) == G["batch"]["output"]
    assert all(math.isfinite(v) for v in worst.values()), worst
    good = (worst["padded logits"] < 1e-4 and worst["packed logits"] < 1e-4 and worst["padded loss (rel)"] < 1e-5
            and worst["packed loss (rel)"] < 1e-5 and worst["grad norms (rel)"] < 1e-4 and ok1 and ok2)
    print(f"{'ok ' if good else 'BAD'} {name}{' (legacy config keys)' if legacy else ''}: "
          + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()) + f", greedy single {ok1}, batch {ok2}")
    return good


def hf_reads_legacy(name):
    """transformers itself, given the legacy config.json, gives the fixture's padded logits (so the legacy key
    rules above are transformers' own)."""
    import shutil
    import tempfile
    from transformers import AutoModelForCausalLM
    d = os.path.join(ROOT, f"tiny-{name}")
    rec = json.load(open(os.path.join(d, "parity.json")))
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(os.path.join(d, "config.legacy.json"), os.path.join(tmp, "config.json"))
        shutil.copy(os.path.join(d, "model.safetensors"), tmp)
        m = AutoModelForCausalLM.from_pretrained(tmp, dtype=torch.float32, attn_implementation=rec["attnImplementation"])
        m.eval()
        P = rec["padded"]
        B, T = P["shape"]
        with torch.no_grad():
            lg = m(input_ids=torch.tensor(P["inputIds"]).view(B, T),
                   attention_mask=torch.tensor(P["attentionMask"]).view(B, T)).logits
    worst = max(float((lg[b, t] - torch.tensor(w)).abs().max()) for b, row in enumerate(P["logits"])
                for t, w in enumerate(row) if w is not None)
    print(f"{'ok ' if worst < 1e-4 else 'BAD'} {name}: transformers with the legacy config.json, padded logits {worst:.1e}")
    return worst < 1e-4


def main():
    torch.manual_seed(0)
    names = sys.argv[1:] or NAMES
    results = [check(n, legacy) for n in names for legacy in (False, True)]
    results += [hf_reads_legacy(n) for n in names]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
