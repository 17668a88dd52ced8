"""PEFT loads the LoRA adapters sftkit trained on issue 22's tiny fixtures (scripts/gen-fixtures/save-lora-issue22.ts)
and gives sftkit's logits: the adapter names (phi3's fused qkv_proj) and the math match PEFT's.

Run by hand:  node --import tsx scripts/gen-fixtures/save-lora-issue22.ts /tmp/sftkit-lora &&
              ~/.cache/sftkit/pyref/bin/python scripts/gen-fixtures/check-lora-issue22.py /tmp/sftkit-lora
"""
import json
import os
import sys

sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "fixtures", "models")


def main(saved):
    ok = True
    for name in ["phi3", "gemma2", "gemma3-text", "mistral", "smollm3", "qwen2-sliding", "llama-yarn"]:
        kw = {"attn_implementation": "eager"} if name == "gemma2" else {}
        base = AutoModelForCausalLM.from_pretrained(os.path.join(ROOT, f"tiny-{name}"), dtype=torch.float32, **kw)
        d = os.path.join(saved, f"tiny-{name}")
        m = PeftModel.from_pretrained(base, d).eval()
        rec = json.load(open(os.path.join(d, "sftkit-logits.json")))
        ids = torch.tensor([rec["inputIds"]])
        with torch.no_grad():
            lg = m(input_ids=ids).logits
            with m.disable_adapter():
                plain = m(input_ids=ids).logits
        diff = float((lg - torch.tensor(rec["logits"]).view_as(lg)).abs().max())
        effect = float((lg - plain).abs().max())
        targets = json.load(open(os.path.join(d, "adapter_config.json")))["target_modules"]
        good = diff <= 1e-5 and effect > 0.1
        ok = ok and good
        print(f"{'ok ' if good else 'BAD'} tiny-{name}: targets {targets}, max |logits - PEFT| {diff:.1e} (adapter moves the logits by {effect:.2f})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main(sys.argv[1])
