"""The loss's memory on the PyTorch + transformers side of bench/compare (run.ts --loss-memory).

What transformers' *ForCausalLM does after the last norm, at a row's shapes: logits = lm_head(hidden) for all B x T
positions ([B, T, V] fp32), then its loss function (ForCausalLMLoss: shift, cross_entropy), then backward. The peak
RSS of that (VmHWM, reset through /proc/self/clear_refs just before) above the RSS before it, less the two gradients
it must produce (d hidden [B, T, C] and d W [V, C] unless --frozen-head, which the training step holds in any
engine), is the loss's memory. The logits stay referenced until backward has finished, as `out.logits` does in torch_bench.py's loop.
Prints one JSON object.
"""
import argparse
import json

import torch
from transformers.loss.loss_utils import ForCausalLMLoss

from torch_bench import random_batch


def status_mib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(key)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--seq-len", type=int, required=True)
    p.add_argument("--vocab", type=int, required=True)
    p.add_argument("--hidden", type=int, required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--frozen-head", action="store_true", help="LoRA: the LM head gets no gradient")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    B, T, V, C = a.batch_size, a.seq_len, a.vocab, a.hidden
    _, labels, _ = random_batch(B, T, V, 1000)
    w = (torch.rand(V, C) * 0.04 - 0.02).requires_grad_(not a.frozen_head)
    h = torch.rand(B, T, C).requires_grad_(True)
    # A warm-up at a small size, so that first-use allocations are not counted.
    ForCausalLMLoss(torch.nn.functional.linear(h[:, :4], w[:64]), labels[:, :4].clamp(max=63), vocab_size=64).backward()
    w.grad = None
    h.grad = None
    w[0].sum().item()  # touched: w and h are resident before the measurement
    before = status_mib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS
    logits = torch.nn.functional.linear(h, w)
    loss = ForCausalLMLoss(logits, labels, vocab_size=V)
    loss.backward()
    peak = status_mib("VmHWM")
    del logits, loss
    after = status_mib("VmRSS")
    grads = ((w.grad.numel() if w.grad is not None else 0) + h.grad.numel()) * 4 / 2**20
    print(json.dumps({
        "loss_peak_mib": peak - before - grads,
        "peak_above_before_mib": peak - before,
        "gradients_mib": grads,
        "after_mib": after - before,
        "logits_mib": B * T * V * 4 / 2**20,
        "rows": B * T,
    }))


if __name__ == "__main__":
    main()
