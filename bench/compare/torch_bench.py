"""PyTorch + transformers side of bench/compare: the same training-step workload as `sftkit bench train`.

A plain PyTorch training loop over a Hugging Face model loaded from DIR (the random model that sftkit built, so both
sides start from identical weights): forward with labels (transformers' loss), backward, clip_grad_norm_(1.0),
torch.optim.AdamW (PyTorch's default implementation for CPU tensors), zero_grad. Batches are generated with the same
LCG as src/bench/train-bench.ts (randomBatch), so both sides see the same ids, labels and padding.
Dropout is switched off (sftkit has none), so both sides do the same arithmetic.

Prints one JSON object with the keys of `sftkit bench train --json`.

--lora-r R: rank-R LoRA adapters through peft (alpha 2R, dropout 0) on the frozen model, --lora-targets as
`sftkit bench train --lora-targets` (all-linear: every linear layer but the LM head, as peft's and sftkit's);
AdamW and the clip see only the adapters.

--dtype bfloat16 (issue 24): the base loaded in bf16 (from_pretrained(dtype=torch.bfloat16), the peers' way to fit a
3B-8B model: the layers compute in bf16, peft's adapters in fp32 by its default autocast_adapter_dtype), no autocast.
--load-only: load (and wrap in peft) only, then print {"load_ms", "peak_rss_mib", "rss_mib"}: the peak RSS of loading
alone. Every run's JSON has "load_peak_rss_mib", the peak before the first step.

--device cuda (scripts/device-check.sh): the same loop on the GPU, each timer read after torch.cuda.synchronize();
--autocast runs the forward pass under bf16 autocast over the fp32 weights (fp32 master weights, as sftkit's
--autocast); --compile wraps the model in torch.compile (compiled during the warm-up steps, which are not timed).
On CUDA the JSON adds peak_gpu_mib / peak_gpu_reserved_mib (torch.cuda.max_memory_allocated / _reserved over the
process) and the compile time.
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
    ids = [[0] * T for _ in range(B)]
    labels = [[-100] * T for _ in range(B)]
    mask = [[0] * T for _ in range(B)]
    for b in range(B):
        pad = (0.1 if B == 1 else 0.2 * b / (B - 1))
        real = max(2, T - int(T * pad))
        prompt = int(real * 0.4)
        for t in range(real):
            s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
            ids[b][t] = s % vocab
            mask[b][t] = 1
            if t >= prompt:
                labels[b][t] = ids[b][t]
    as_tensor = lambda rows: torch.tensor(rows, dtype=torch.long)
    return as_tensor(ids), as_tensor(labels), as_tensor(mask)


def peak_rss_mib():
    """VmHWM of /proc/self/status (this process's own high-water mark): ru_maxrss survives exec, so a child of a big
    parent would report the parent's size (peakRssMiB() in src/bench/train-bench.ts reads the same)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--seq-len", type=int, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--autocast", action="store_true", help="bf16 autocast of the forward pass (fp32 weights)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--lora-r", type=int, default=0, help="train rank-R LoRA adapters (alpha 2R) through peft")
    p.add_argument("--lora-targets", default="all-linear", help="peft target_modules: all-linear or NAME,...")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="dtype the model is loaded in")
    p.add_argument("--load-only", action="store_true", help="load, report the peak RSS of loading, exit")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cuda = a.device == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    config = AutoConfig.from_pretrained(a.model)
    for k in ("attn_pdrop", "resid_pdrop", "embd_pdrop", "attention_dropout", "hidden_dropout", "summary_first_dropout"):
        if hasattr(config, k):
            setattr(config, k, 0.0)
    t_load = time.perf_counter()
    dtype = torch.bfloat16 if a.dtype == "bfloat16" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(a.model, config=config, dtype=dtype, attn_implementation="sdpa")
    if a.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if a.lora_r:
        from peft import LoraConfig, get_peft_model

        targets = a.lora_targets if a.lora_targets == "all-linear" else a.lora_targets.split(",")
        model = get_peft_model(model, LoraConfig(r=a.lora_r, lora_alpha=2 * a.lora_r, lora_dropout=0.0, target_modules=targets))
        if a.gradient_checkpointing:
            model.enable_input_require_grads()
    model.to(a.device)
    model.train()
    load_ms = (time.perf_counter() - t_load) * 1e3
    load_peak = peak_rss_mib()
    if a.load_only:
        print(json.dumps({"load_ms": load_ms, "peak_rss_mib": load_peak, "rss_mib": rss_mib(), "dtype": a.dtype, "torch": torch.__version__}))
        return
    params = [q for q in model.parameters() if q.requires_grad]
    # PyTorch's default AdamW implementation for the device (foreach on CUDA, as the CPU runs use theirs).
    opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.01)
    fwd = torch.compile(model) if a.compile else model
    vocab = model.config.vocab_size
    runs = []
    first_ms = None
    for i in range(a.warmup + a.steps):
        ids, labels, mask = (x.to(a.device) for x in random_batch(a.batch_size, a.seq_len, vocab, 1000 + i))
        sync()
        t0 = time.perf_counter()
        with torch.autocast(device_type=a.device, dtype=torch.bfloat16, enabled=a.autocast):
            out = fwd(input_ids=ids, attention_mask=mask, labels=labels)
        sync()
        t1 = time.perf_counter()
        out.loss.backward()
        sync()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        t3 = time.perf_counter()
        if i == 0:
            first_ms = (t3 - t0) * 1e3
        if i >= a.warmup:
            runs.append(((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, (t3 - t0) * 1e3))
    mean = lambda k: sum(r[k] for r in runs) / len(runs)
    ms = mean(3)
    extra = {}
    if cuda:
        extra = {
            "device": "cuda:0",
            "gpu": torch.cuda.get_device_name(0),
            "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20,
            "peak_gpu_reserved_mib": torch.cuda.max_memory_reserved() / 2**20,
        }
    if a.compile:
        extra["first_step_ms"] = first_ms
    print(json.dumps({
        "tokens_per_s": a.batch_size * a.seq_len / (ms / 1e3),
        "ms_per_step": ms,
        "ms_forward": mean(0),
        "ms_backward": mean(1),
        "ms_optimizer": mean(2),
        "peak_rss_mib": peak_rss_mib(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "mkl_code_path": mkl_code_path(),
        "autocast": a.autocast,
        "compile": a.compile,
        "trainable_params": sum(q.numel() for q in params),
        "dtype": a.dtype,
        "load_ms": load_ms,
        "load_peak_rss_mib": load_peak,
        **extra,
    }))


if __name__ == "__main__":
    main()
