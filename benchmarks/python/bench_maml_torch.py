#!/usr/bin/python3
"""PyTorch peer of benchmarks/learners/bench_maml.cpp: second-order MAML and first-order MAML
meta-steps on Finn's sinusoid setup (MLP 1-40-40-1, K = 10 + 10, one inner step, alpha 0.01,
meta-batch 25, Adam 1e-3), written two ways:

- `loop`: a Python loop over the tasks, as learn2learn and higher users write it;
- `batched`: all 25 tasks at once with torch.bmm (the fastest PyTorch formulation).

    /usr/bin/python3 benchmarks/python/bench_maml_torch.py [--threads 1]
"""
import argparse
import time

import torch
import torch.nn.functional as F


def make_params():
    torch.manual_seed(5)
    sizes = [1, 40, 40, 1]
    p = []
    for i in range(3):
        bound = 1.0 / sizes[i] ** 0.5
        p.append(((torch.rand(sizes[i], sizes[i + 1]) * 2 - 1) * bound).requires_grad_())
        p.append(((torch.rand(sizes[i + 1]) * 2 - 1) * bound).requires_grad_())
    return p


def forward(p, x):
    h = torch.relu(x @ p[0] + p[1])
    h = torch.relu(h @ p[2] + p[3])
    return h @ p[4] + p[5]


def forward_batched(p, x):  # x [T, K, 1], p shared or [T, ...]
    def mm(a, w):
        return torch.bmm(a, w) if w.dim() == 3 else a @ w
    def add(a, b):
        return a + (b.unsqueeze(1) if b.dim() == 2 else b)
    h = torch.relu(add(mm(x, p[0]), p[1]))
    h = torch.relu(add(mm(h, p[2]), p[3]))
    return add(mm(h, p[4]), p[5])


def batch(tasks=25, k=10):
    a = torch.rand(tasks, 1, 1) * 4.9 + 0.1
    ph = torch.rand(tasks, 1, 1) * 3.14159
    xs, xq = torch.rand(tasks, k, 1) * 10 - 5, torch.rand(tasks, k, 1) * 10 - 5
    return xs, a * torch.sin(xs - ph), xq, a * torch.sin(xq - ph)


def run_cases(threads=1, repeats=5):
    """Fastest-of-repeats microseconds per meta-step, keyed like the C++ benchmarks."""
    torch.set_num_threads(threads)
    xs, ys, xq, yq = batch()
    out = {}
    for name, second in (("Maml_Sinusoid/loop", True), ("Fomaml_Sinusoid/loop", False),
                         ("Maml_Sinusoid/batched", True), ("Fomaml_Sinusoid/batched", False)):
        p = make_params()
        opt = torch.optim.Adam(p, lr=1e-3)
        batched = name.endswith("batched")

        def step():
            opt.zero_grad()
            total = 0
            for t in range(xs.shape[0]):
                loss = ((forward(p, xs[t]) - ys[t]) ** 2).mean()
                g = torch.autograd.grad(loss, p, create_graph=second)
                fast = [w - 0.01 * gi for w, gi in zip(p, g)]
                total = total + ((forward(fast, xq[t]) - yq[t]) ** 2).mean()
            (total / xs.shape[0]).backward()
            opt.step()

        def step_batched():
            opt.zero_grad()
            tasks = xs.shape[0]
            pt = [w.unsqueeze(0).expand(tasks, *w.shape) for w in p]  # per-task copies of theta
            inner = ((forward_batched(pt, xs) - ys) ** 2).mean(dim=(1, 2)).sum()
            g = torch.autograd.grad(inner, pt, create_graph=second)
            fast = [w - 0.01 * gi for w, gi in zip(pt, g)]
            ((forward_batched(fast, xq) - yq) ** 2).mean(dim=(1, 2)).mean().backward()
            opt.step()

        fn = step_batched if batched else step
        fn()
        times = []
        for _ in range(repeats):
            n = 20 if batched else 5
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            times.append((time.perf_counter() - t0) / n * 1e6)
        out[name] = min(times)
    out.update(omniglot_cases(repeats=min(repeats, 2)))
    return out


def omniglot_cases(repeats=2):
    """Second-order MAML on Omniglot-shaped tasks (conv4, 5-way 1-shot, 15 queries per class,
    alpha 0.4, one inner step, meta-batch 32, Adam): a per-task loop, as learn2learn runs it."""
    from bench_conv4_torch import conv4_forward, conv4_params
    p = [w.requires_grad_() for w in conv4_params(1, 64, 28, 5)]
    opt = torch.optim.Adam(p, lr=1e-3)
    tasks = [(torch.rand(5, 1, 28, 28), torch.arange(5), torch.rand(75, 1, 28, 28),
              torch.arange(5).repeat_interleave(15)) for _ in range(32)]

    def step():
        opt.zero_grad()
        for xs, ys, xq, yq in tasks:  # backward per task: memory of one task at a time
            g = torch.autograd.grad(F.cross_entropy(conv4_forward(p, xs), ys), p, create_graph=True)
            fast = [w - 0.4 * gi for w, gi in zip(p, g)]
            (F.cross_entropy(conv4_forward(fast, xq), yq) / len(tasks)).backward()
        opt.step()

    step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e6)
    return {"Maml_Omniglot/loop": min(times)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    for name, us in run_cases(args.threads).items():
        print(f"{name:32s} {us:10.1f} us/meta-step  {1e6 / us:8.1f} meta-steps/s")


if __name__ == "__main__":
    main()
