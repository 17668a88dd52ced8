"""Golden numbers for DPO (TRL's own loss code) and logit-level distillation (run by hand, never by CI):
   ~/.cache/sftkit/pyref/bin/python scripts/gen-fixtures/dpo_kd.py
Writes
  test/fixtures/dpo/trl-dpo.json: four preference pairs of token ids; policy = tiny-llama, reference = tiny-llama-untied (both
    vocabulary 128, checked in under test/fixtures/models); the pairs collated by TRL's DataCollatorForPreference and
    passed through DPOTrainer._compute_loss (TRL's concatenated forward, selective_log_softmax over the completion
    mask, its loss and metrics) for loss_type sigmoid and ipo at beta 0.1 and 0.5: loss, rewards/chosen,
    rewards/rejected, rewards/accuracies, rewards/margins, per-pair log-probs of policy and reference, and for sigmoid
    the per-parameter gradient norms of the policy after backward of TRL's loss (the mean over pairs). Label smoothing
    (conservative DPO, TRL's sigmoid loss before 1.0; TRL 1.x has no smoothing in `sigmoid`) is computed from the
    same log-probs by its formula.
  test/fixtures/dpo/kd.json: random student/teacher hidden states and LM heads with labels, and
    alpha * F.cross_entropy + (1 - alpha) * T^2 * F.kl_div(log_q, log_p, log_target=True) (sums over labelled
    positions, HF shift) with the gradients w.r.t. the student's hidden states and head.
"""
import json
import os
import sys
import tempfile

sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import torch
import torch.nn.functional as F
import transformers
import trl
from datasets import Dataset
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast
from trl import DPOConfig, DPOTrainer
from trl.trainer.dpo_trainer import DataCollatorForPreference

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "fixtures")
OUT = os.path.join(ROOT, "dpo")
os.makedirs(OUT, exist_ok=True)
versions = {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__}
torch.manual_seed(0)
g = torch.Generator().manual_seed(7)


def ids(n):
    return [int(x) for x in torch.randint(3, 128, (n,), generator=g)]


# Four pairs: prompts of 3..6 tokens, answers of 1..5 tokens ending in EOS (2); chosen and rejected share the prompt.
pairs = []
for p_len, c_len, r_len in [(4, 3, 5), (6, 2, 2), (3, 5, 1), (5, 4, 3)]:
    pairs.append({"prompt_ids": ids(p_len), "chosen_ids": ids(c_len - 1) + [2], "rejected_ids": ids(r_len - 1) + [2]})

policy = AutoModelForCausalLM.from_pretrained(os.path.join(ROOT, "models", "tiny-llama"), dtype=torch.float32)
ref = AutoModelForCausalLM.from_pretrained(os.path.join(ROOT, "models", "tiny-llama-untied"), dtype=torch.float32)
tokenizer = PreTrainedTokenizerFast(tokenizer_file=os.path.join(ROOT, "tokenizers", "gpt2", "tokenizer.json"), eos_token="<|endoftext|>", pad_token="<|endoftext|>")
inputs = DataCollatorForPreference(pad_token_id=0).torch_call([dict(p) for p in pairs])


def trl_numbers(loss_type, beta, grads):
    with tempfile.TemporaryDirectory() as tmp:
        # bf16=False: TRL 1.x defaults to bf16, and accelerate then autocasts the prepared reference forward to bf16 on CPU.
        args = DPOConfig(output_dir=tmp, beta=beta, loss_type=[loss_type], report_to=[], use_cpu=True, bf16=False, max_length=None)
        dummy = Dataset.from_list([{"prompt": "a", "chosen": " b", "rejected": " c"}])
        trainer = DPOTrainer(model=policy, ref_model=ref, args=args, train_dataset=dummy, processing_class=tokenizer)
        policy.zero_grad(set_to_none=True)
        policy.train()
        loss = trainer._compute_loss(policy, {k: v.clone() for k, v in inputs.items()}, return_outputs=False)
        m = {k: v[-1] for k, v in trainer._metrics["train"].items()}
        out = {
            "lossType": loss_type, "beta": beta, "loss": float(loss),
            "rewardsChosen": m["rewards/chosen"], "rewardsRejected": m["rewards/rejected"],
            "accuracy": m["rewards/accuracies"], "margin": m["rewards/margins"],
        }
        if grads:
            loss.backward()
            out["gradNorms"] = {n: float(p.grad.double().norm()) for n, p in policy.named_parameters() if p.grad is not None}
        return out


def seq_logps(model):
    with torch.no_grad():
        logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits[:, :-1]
        lp = torch.gather(logits.log_softmax(-1), 2, inputs["input_ids"][:, 1:, None])[..., 0]
        lp = (lp * inputs["completion_mask"][:, 1:]).sum(1)
    c, r = lp.chunk(2)
    return [float(x) for x in c], [float(x) for x in r]


pc, pr = seq_logps(policy)
rc, rr = seq_logps(ref)
results = [trl_numbers("sigmoid", 0.1, True), trl_numbers("sigmoid", 0.5, False), trl_numbers("ipo", 0.1, False), trl_numbers("ipo", 0.5, False)]
# Building a DPOTrainer must not change what the models compute (it did with bf16 autocast on the reference).
assert (pc, pr, rc, rr) == (*seq_logps(policy), *seq_logps(ref)), "the models' log-probs changed while building the trainers"
ls, beta = 0.2, 0.1
m = (torch.tensor(pc, dtype=torch.float64) - torch.tensor(rc, dtype=torch.float64)) - (torch.tensor(pr, dtype=torch.float64) - torch.tensor(rr, dtype=torch.float64))
smoothed = float((-(1 - ls) * F.logsigmoid(beta * m) - ls * F.logsigmoid(-beta * m)).mean())
json.dump({
    "versions": versions, "policy": "tiny-llama", "reference": "tiny-llama-untied", "pairs": pairs,
    "policyLogps": {"chosen": pc, "rejected": pr}, "referenceLogps": {"chosen": rc, "rejected": rr},
    "trl": results, "labelSmoothing": {"beta": beta, "labelSmoothing": ls, "loss": smoothed},
}, open(os.path.join(OUT, "trl-dpo.json"), "w"), indent=1)

# ---- logit-level distillation against F.kl_div
B, T, C, Ct, V = 2, 9, 12, 20, 97
kd = []
for alpha, tau in [(0.5, 1.0), (0.3, 2.0)]:
    h = torch.randn(B, T, C, generator=g).requires_grad_(True)
    w = (torch.randn(V, C, generator=g) * 0.5).requires_grad_(True)
    ht = torch.randn(B, T, Ct, generator=g)
    wt = torch.randn(V, Ct, generator=g) * 0.5
    y = torch.randint(0, V, (B, T), generator=g)
    y[0, :3] = -100
    y[1, 5] = -100
    zs, zt = h[:, :-1] @ w.T, ht[:, :-1] @ wt.T
    tgt = y[:, 1:]
    mask = tgt != -100
    ce = F.cross_entropy(zs.reshape(-1, V), tgt.reshape(-1), ignore_index=-100, reduction="sum")
    klp = F.kl_div(F.log_softmax(zs / tau, -1)[mask], F.log_softmax(zt / tau, -1)[mask], log_target=True, reduction="sum")
    loss = alpha * ce + (1 - alpha) * tau * tau * klp
    loss.backward()
    flat = lambda t: [float(x) for x in t.detach().reshape(-1)]
    kd.append({
        "alpha": alpha, "temperature": tau, "hiddenShape": [B, T, C], "weightShape": [V, C], "teacherHiddenShape": [B, T, Ct],
        "teacherWeightShape": [V, Ct], "labelsShape": [B, T], "hidden": flat(h), "weight": flat(w), "teacherHidden": flat(ht),
        "teacherWeight": flat(wt), "labels": [int(x) for x in y.reshape(-1)], "lossSum": float(loss), "ceSum": float(ce),
        "klSum": float(klp), "count": int(mask.sum()), "gradHidden": flat(h.grad), "gradWeight": flat(w.grad),
    })
json.dump({"versions": versions, "cases": kd}, open(os.path.join(OUT, "kd.json"), "w"))
print("wrote", OUT, versions)
