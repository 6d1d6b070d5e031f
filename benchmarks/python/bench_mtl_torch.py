#!/usr/bin/python3
"""PyTorch peer of benchmarks/learners/bench_mtl.cpp: the Multi-Fashion training step
(Sener & Koltun's LeNet with hard parameter sharing, two 10-class heads, batch 256 of
1x28x28 random images, Adam) with equal weighting (one backward of the summed losses) and
with PCGrad (two task gradients of the shared parameters by torch.autograd.grad with
retain_graph, projected as in Yu et al.'s Algorithm 1), written as a PyTorch user would.

    /usr/bin/python3 benchmarks/python/bench_mtl_torch.py [--threads 1] [--repeats 20]

Prints one line per case: name, fastest-of-repeats milliseconds per training step.
"""
import argparse
import random
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class HardSharing(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(1, 10, 5), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(10, 20, 5), nn.MaxPool2d(2), nn.ReLU(),
            nn.Flatten(), nn.Linear(320, 50), nn.ReLU())
        self.heads = nn.ModuleList(
            [nn.Sequential(nn.Linear(50, 50), nn.ReLU(), nn.Linear(50, 10)) for _ in range(2)])

    def forward(self, x):
        z = self.trunk(x)
        return [h(z) for h in self.heads]


def best_ms(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return min(times)


def pcgrad_combine(grads):
    """Yu et al. 2020, Algorithm 1: project each task gradient off the others it conflicts
    with (random order), then sum."""
    out = torch.zeros_like(grads[0])
    for i, g in enumerate(grads):
        p = g.clone()
        order = [j for j in range(len(grads)) if j != i]
        random.shuffle(order)
        for j in order:
            dot = torch.dot(p, grads[j])
            if dot < 0:
                p -= dot / grads[j].pow(2).sum() * grads[j]
        out += p
    return out


def run_cases(threads=1, repeats=20):
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    x = torch.rand(256, 1, 28, 28)
    y = [torch.randint(0, 10, (256,)) for _ in range(2)]
    results = {}

    net = HardSharing()
    opt = torch.optim.Adam(net.parameters(), 1e-3)

    def ew_step():
        out = net(x)
        loss = sum(F.cross_entropy(o, t) for o, t in zip(out, y))
        opt.zero_grad()
        loss.backward()
        opt.step()

    results["MultiFashionStep/ew"] = best_ms(ew_step, repeats)

    shared = list(net.trunk.parameters())

    def pcgrad_step():
        out = net(x)
        losses = [F.cross_entropy(o, t) for o, t in zip(out, y)]
        opt.zero_grad()
        grads = []
        for loss in losses:
            g = torch.autograd.grad(loss, shared, retain_graph=True)
            grads.append(torch.cat([t.flatten() for t in g]))
        sum(losses).backward()  # the heads' gradients (and a trunk gradient we replace)
        combined = pcgrad_combine(grads)
        offset = 0
        for p in shared:
            n = p.numel()
            p.grad = combined[offset:offset + n].view_as(p).clone()
            offset += n
        opt.step()

    results["MultiFashionStep/pcgrad"] = best_ms(pcgrad_step, repeats)
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    for name, ms in run_cases(args.threads, args.repeats).items():
        print(f"{name} {ms:.3f}")


if __name__ == "__main__":
    main()
