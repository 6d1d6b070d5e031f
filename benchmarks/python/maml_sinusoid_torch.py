#!/usr/bin/python3
"""The quality peer of examples/maml_sinusoid.cpp: Finn et al.'s sinusoid MAML in PyTorch,
same recipe (MLP 1-40-40-1 ReLU, amplitude U[0.1, 5], phase U[0, pi], x U[-5, 5], K = 10
support and 10 query points, meta-batch 25, one inner SGD step alpha = 0.01 with
create_graph, Adam 1e-3, 20,000 meta-steps), then the MSE on 1,000 fresh tasks before
adaptation and after 1 and 10 inner steps with 95% CIs, in the example's `final:` format.

    /usr/bin/python3 benchmarks/python/maml_sinusoid_torch.py [--steps 20000] [--seed 1]

The meta-step is batched over the 25 tasks with bmm (the fastest PyTorch formulation;
mathematically the per-task loop).
"""
import argparse
import math
import time

import torch


def sample(tasks, k, gen):
    amp = torch.rand(tasks, 1, 1, generator=gen) * 4.9 + 0.1
    phase = torch.rand(tasks, 1, 1, generator=gen) * math.pi
    xs = torch.rand(tasks, 2 * k, 1, generator=gen) * 10 - 5
    ys = amp * torch.sin(xs - phase)
    return xs[:, :k], ys[:, :k], xs[:, k:], ys[:, k:]


def init_params():
    layers = [torch.nn.Linear(1, 40), torch.nn.Linear(40, 40), torch.nn.Linear(40, 1)]
    return [p.detach().clone().requires_grad_() for l in layers for p in (l.weight, l.bias)]


def forward(p, x):  # p: per-task [T, out, in] / [T, out] or shared
    h = x
    for i in range(0, len(p), 2):
        w, b = p[i], p[i + 1]
        w = w if w.dim() == 3 else w.unsqueeze(0).expand(x.shape[0], *w.shape)
        b = b if b.dim() == 2 else b.unsqueeze(0).expand(x.shape[0], *b.shape)
        h = torch.bmm(h, w.transpose(1, 2)) + b.unsqueeze(1)
        if i + 2 < len(p):
            h = torch.relu(h)
    return h


def adapt(p, xs, ys, steps, lr, create_graph):
    tasks = xs.shape[0]
    fast = [w.unsqueeze(0).expand(tasks, *w.shape) for w in p]
    for _ in range(steps):
        loss = ((forward(fast, xs) - ys) ** 2).mean(dim=(1, 2)).sum()  # per-task means, summed
        g = torch.autograd.grad(loss, fast, create_graph=create_graph)
        fast = [w - lr * gi for w, gi in zip(fast, g)]
    return fast


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    p = init_params()
    opt = torch.optim.Adam(p, lr=1e-3)
    start = time.time()
    for step in range(1, args.steps + 1):
        xs, ys, xq, yq = sample(25, 10, gen)
        fast = adapt(p, xs, ys, 1, 0.01, True)
        loss = ((forward(fast, xq) - yq) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 2000 == 0:
            print(f"step {step} meta_loss {loss.item():.4f}", flush=True)
    test_gen = torch.Generator().manual_seed(args.seed + 1000003)
    xs, ys, xq, yq = sample(1000, 10, test_gen)
    results = {}
    for steps in (0, 1, 10):
        fast = [w.detach() for w in adapt(p, xs, ys, steps, 0.01, False)] if steps else p
        with torch.no_grad():
            mse = ((forward(fast, xq) - yq) ** 2).mean(dim=(1, 2))
        results[steps] = (mse.mean().item(), 1.96 * mse.std().item() / math.sqrt(len(mse)))
    (a, ac), (b, bc), (c, cc) = results[0], results[1], results[10]
    print(f"final: mse_pre={a:.6g} mse_pre_ci={ac:.3g} mse_1={b:.6g} mse_1_ci={bc:.3g} "
          f"mse_10={c:.6g} mse_10_ci={cc:.3g} steps={args.steps} seconds={time.time() - start:.2f}")


if __name__ == "__main__":
    main()
