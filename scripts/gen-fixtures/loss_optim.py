"""Golden numbers for the fused loss and the AdamW optimizer (run by hand, never by CI):
   ~/.cache/sftkit/pyref/bin/python scripts/gen-fixtures/loss_optim.py
Writes test/fixtures/loss-optim/{loss,adamw}.json: inputs, torch.nn.functional.cross_entropy (sum, ignore_index
-100, HF shift) with gradients, and torch.optim.AdamW (foreach=False) + clip_grad_norm_ for 3 steps."""
import json, os, sys
sys.path = [p for p in sys.path if not p.endswith('gen-fixtures')]
import torch, transformers  # noqa: F401  (versions recorded)

out = os.path.join(os.path.dirname(__file__), '..', '..', 'test', 'fixtures', 'loss-optim')
os.makedirs(out, exist_ok=True)
versions = {'torch': torch.__version__, 'python': sys.version.split()[0]}
g = torch.Generator().manual_seed(1234)

def flat(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]

# --- loss: B=3, T=7, C=16, V=50 with ignored positions and one fully ignored row
B, T, C, V = 3, 7, 16, 50
hidden = torch.randn(B, T, C, generator=g, dtype=torch.float64).float().requires_grad_(True)
weight = (torch.randn(V, C, generator=g, dtype=torch.float64) * 0.3).float().requires_grad_(True)
labels = torch.randint(0, V, (B, T), generator=g)
labels[0, :3] = -100
labels[1, 4] = -100
labels[2, :] = -100
logits = hidden[:, :-1] @ weight.T
loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), labels[:, 1:].reshape(-1), ignore_index=-100, reduction='sum')
loss.backward()
json.dump({
    'versions': versions, 'hiddenShape': [B, T, C], 'weightShape': [V, C], 'labelsShape': [B, T],
    'hidden': flat(hidden), 'weight': flat(weight), 'labels': labels.reshape(-1).tolist(),
    'lossSum': float(loss), 'count': int((labels[:, 1:] != -100).sum()),
    'gradHidden': flat(hidden.grad), 'gradWeight': flat(weight.grad),
}, open(os.path.join(out, 'loss.json'), 'w'))

# --- AdamW: 3 params (one without decay), 3 steps with clipping
shapes = [[4, 5], [5], [3, 2, 2]]
decay = [True, False, True]
params = [torch.nn.Parameter(torch.randn(*s, generator=g)) for s in shapes]
init = [flat(p) for p in params]
groups = [{'params': [p for p, d in zip(params, decay) if d], 'weight_decay': 0.1},
          {'params': [p for p, d in zip(params, decay) if not d], 'weight_decay': 0.0}]
opt = torch.optim.AdamW(groups, lr=1e-2, betas=(0.9, 0.95), eps=1e-8, foreach=False)
lrs = [1e-2, 5e-3, 2e-3]
grads, norms = [], []
for s, lr in enumerate(lrs):
    for group in opt.param_groups:
        group['lr'] = lr
    step_grads = [torch.randn(*sh, generator=g) * (3.0 if s == 0 else 0.2) for sh in shapes]
    for p, gr in zip(params, step_grads):
        p.grad = gr.clone()
    grads.append([flat(gr) for gr in step_grads])
    norms.append(float(torch.nn.utils.clip_grad_norm_(params, 1.0)))
    opt.step()
json.dump({
    'versions': versions, 'shapes': shapes, 'decay': decay, 'params': init, 'grads': grads, 'lr': lrs,
    'beta1': 0.9, 'beta2': 0.95, 'eps': 1e-8, 'weightDecay': 0.1, 'maxGradNorm': 1.0,
    'gradNorms': norms, 'after': [flat(p) for p in params],
    'expAvg': [flat(opt.state[p]['exp_avg']) for p in params], 'expAvgSq': [flat(opt.state[p]['exp_avg_sq']) for p in params],
}, open(os.path.join(out, 'adamw.json'), 'w'))
print('wrote', out, versions)
