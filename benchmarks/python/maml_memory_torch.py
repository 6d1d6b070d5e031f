#!/usr/bin/python3
"""PyTorch peer of BM_Maml_Omniglot_TapeMemory (benchmarks/learners/bench_maml.cpp): the peak
memory of one second-order MAML task on Omniglot-shaped data (conv4, 5-way 1-shot, 15
queries per class, alpha 0.4) with 1, 5 and 10 inner steps, every step differentiated
(create_graph=True, as learn2learn and higher keep it).

Each step count runs in a fresh interpreter; the figures are the growth of its peak
resident set (ru_maxrss) from just before the first task to just after its meta-gradient
(the autograd graph, its saved activations and the gradients, as the operating system saw
them), and the same after 5 tasks in a row ("steady", as in training: freed memory the
allocator did not give back is reused or not). The peers of BM_Maml_Omniglot_TapeMemory's
peak_MiB and steady_MiB.

    /usr/bin/python3 benchmarks/python/maml_memory_torch.py [--steps 1 5 10] [--tasks 5]
"""
import argparse
import os
import resource
import subprocess
import sys

import torch
import torch.nn.functional as F


def tasks_in_a_row(steps, tasks):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_conv4_torch import conv4_forward, conv4_params
    torch.set_num_threads(1)
    p = [w.requires_grad_() for w in conv4_params(1, 64, 28, 5)]
    xs, ys = torch.rand(5, 1, 28, 28), torch.arange(5)
    xq, yq = torch.rand(75, 1, 28, 28), torch.arange(5).repeat_interleave(15)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    growth = []
    for _ in range(tasks):
        fast = p
        for _ in range(steps):
            g = torch.autograd.grad(F.cross_entropy(conv4_forward(fast, xs), ys), fast,
                                    create_graph=True)
            fast = [w - 0.4 * gi for w, gi in zip(fast, g)]
        meta = torch.autograd.grad(F.cross_entropy(conv4_forward(fast, xq), yq), p)
        assert all(torch.isfinite(m).all() for m in meta)
        del g, fast, meta
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        growth.append((after - before) / 1024.0)
    return growth[0], growth[-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 5, 10])
    ap.add_argument("--tasks", type=int, default=5)
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print("%.1f %.1f" % tasks_in_a_row(args.child, args.tasks))
        return
    for s in args.steps:
        out = subprocess.run([sys.executable, __file__, "--child", str(s), "--tasks",
                              str(args.tasks)], check=True, capture_output=True,
                             text=True).stdout.split()
        print(f"Maml_Omniglot_Memory/{s:<3d} peak RSS growth: first task {float(out[0]):8.1f} MiB,"
              f" over {args.tasks} tasks {float(out[1]):8.1f} MiB")


if __name__ == "__main__":
    main()
