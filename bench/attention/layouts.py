"""Attention of packed rows, one layer, forward + backward, through ATen's SDPA (the kernels libtorch runs for
sftkit): a dense block-diagonal causal [T, T] mask over the packed rows against the documents gathered into one
batched causal call per length (what native/engine/model_batch.cc's varlen plan does). Prints one JSON object per case.

  ~/.cache/sftkit/bench-venv/bin/python bench/attention/layouts.py [--rows 2] [--seq 1024] [--doc-lens 16,32,64,256]
"""
import argparse, json, time
import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--rows", type=int, default=2)
p.add_argument("--seq", type=int, default=1024)
p.add_argument("--heads", type=int, default=12)
p.add_argument("--head-dim", type=int, default=64)
p.add_argument("--doc-lens", default="16,32,64,256")
p.add_argument("--reps", type=int, default=5)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
B, T, H, D = a.rows, a.seq, a.heads, a.head_dim


def best_ms(fn):
    fn()
    best = float("inf")
    for _ in range(a.reps):
        t = time.perf_counter(); fn(); best = min(best, time.perf_counter() - t)
    return best * 1e3


for L in [int(x) for x in a.doc_lens.split(",")]:
    assert T % L == 0, f"--doc-lens {L} does not divide --seq {T}"
    q, k, v = (torch.randn(B, H, T, D, requires_grad=True) for _ in range(3))
    g = torch.randn(B, H, T, D)
    doc = torch.arange(T) // L
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    mask = (causal & (doc[:, None] == doc[None, :]))[None, None]

    def dense():
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        torch.autograd.grad(out, (q, k, v), g)

    def varlen():
        n = B * T // L
        qs, ks, vs = (x.reshape(B, H, T // L, L, D).permute(0, 2, 1, 3, 4).reshape(n, H, L, D) for x in (q, k, v))
        out = F.scaled_dot_product_attention(qs, ks, vs, is_causal=True)
        torch.autograd.grad(out, (q, k, v), g.reshape(B, H, T // L, L, D).permute(0, 2, 1, 3, 4).reshape(n, H, L, D))

    # Same result both ways (the layouts differ, the attention does not).
    with torch.no_grad():
        o1 = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        n = B * T // L
        o2 = F.scaled_dot_product_attention(*(x.reshape(B, H, T // L, L, D).permute(0, 2, 1, 3, 4).reshape(n, H, L, D) for x in (q, k, v)), is_causal=True)
        o2 = o2.reshape(B, T // L, H, L, D).permute(0, 2, 1, 3, 4).reshape(B, H, T, D)
        assert torch.allclose(o1, o2, atol=1e-5), "layouts disagree"
    d, vl = best_ms(dense), best_ms(varlen)
    print(json.dumps({"rows": B, "seq": T, "heads": H, "head_dim": D, "doc_len": L, "threads": a.threads, "torch": torch.__version__,
                      "dense_mask_ms": d, "varlen_ms": vl, "speedup": d / vl}), flush=True)
