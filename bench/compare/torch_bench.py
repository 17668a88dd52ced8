"""PyTorch + transformers side of bench/compare: the same training-step workload as `sftkit bench train`.

A plain PyTorch training loop over a Hugging Face model loaded from DIR (the random model that sftkit built, so both
sides start from identical weights): forward with labels (transformers' loss), backward, clip_grad_norm_(1.0),
torch.optim.AdamW (PyTorch's default implementation for CPU tensors), zero_grad. Batches are generated with the same
LCG as src/bench/train-bench.ts (randomBatch), so both sides see the same ids, labels and padding.
Dropout is switched off (sftkit has none), so both sides do the same arithmetic.

Prints one JSON object with the keys of `sftkit bench train --json`.
"""
import argparse
import json
import resource
import time

import torch
from transformers import AutoConfig, AutoModelForCausalLM

from mkl_info import mkl_code_path


def random_batch(B, T, vocab, seed):
    """Mirror of randomBatch() in src/bench/train-bench.ts (keep the two in step)."""
    s = seed & 0xFFFFFFFF
    ids = torch.zeros(B, T, dtype=torch.long)
    labels = torch.full((B, T), -100, dtype=torch.long)
    mask = torch.zeros(B, T, dtype=torch.long)
    for b in range(B):
        pad = (0.1 if B == 1 else 0.2 * b / (B - 1))
        real = max(2, T - int(T * pad))
        prompt = int(real * 0.4)
        for t in range(T):
            if t < real:
                s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
                ids[b, t] = s % vocab
                mask[b, t] = 1
                if t >= prompt:
                    labels[b, t] = ids[b, t]
    return ids, labels, mask


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--seq-len", type=int, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--gradient-checkpointing", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(a.model)
    for k in ("attn_pdrop", "resid_pdrop", "embd_pdrop", "attention_dropout", "hidden_dropout", "summary_first_dropout"):
        if hasattr(config, k):
            setattr(config, k, 0.0)
    model = AutoModelForCausalLM.from_pretrained(a.model, config=config, dtype=torch.float32, attn_implementation="sdpa")
    if a.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01)
    vocab = model.config.vocab_size
    runs = []
    for i in range(a.warmup + a.steps):
        ids, labels, mask = random_batch(a.batch_size, a.seq_len, vocab, 1000 + i)
        t0 = time.perf_counter()
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
        t1 = time.perf_counter()
        out.loss.backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        t3 = time.perf_counter()
        if i >= a.warmup:
            runs.append(((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, (t3 - t0) * 1e3))
    mean = lambda k: sum(r[k] for r in runs) / len(runs)
    ms = mean(3)
    print(json.dumps({
        "tokens_per_s": a.batch_size * a.seq_len / (ms / 1e3),
        "ms_per_step": ms,
        "ms_forward": mean(0),
        "ms_backward": mean(1),
        "ms_optimizer": mean(2),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "mkl_code_path": mkl_code_path(),
    }))


if __name__ == "__main__":
    main()
