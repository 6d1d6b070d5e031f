#!/usr/bin/python3
"""PyTorch peer of benchmarks/nn/bench_conv4.cpp: the same conv4 networks, shapes and steps.

    /usr/bin/python3 benchmarks/python/bench_conv4_torch.py [--threads 1] [--repeats 3]

Batch norm uses batch statistics (as our default and MAML's reference setup); the
second-order step runs the network functionally on adapted weights, as learn2learn and
higher do. Prints one line per case: name, fastest-of-repeats milliseconds per iteration.
"""
import argparse
import time

import torch
import torch.nn.functional as F


def conv4_params(in_ch, filters, side, outputs):
    torch.manual_seed(3)
    params = []
    ch = in_ch
    for _ in range(4):
        bound = 1.0 / (ch * 9) ** 0.5
        params += [(torch.rand(filters, ch, 3, 3) * 2 - 1) * bound, (torch.rand(filters) * 2 - 1) * bound,
                   torch.ones(filters), torch.zeros(filters)]
        ch = filters
        side //= 2
    feat = filters * side * side
    bound = 1.0 / feat ** 0.5
    params += [(torch.rand(outputs, feat) * 2 - 1) * bound, (torch.rand(outputs) * 2 - 1) * bound]
    return params


def conv4_forward(p, x):
    h = x
    for b in range(4):
        w, bias, gamma, beta = p[4 * b:4 * b + 4]
        h = F.conv2d(h, w, bias, padding=1)
        h = F.batch_norm(h, None, None, gamma, beta, training=True)
        h = F.max_pool2d(F.relu(h), 2)
    return F.linear(h.flatten(1), p[16], p[17])


def best_ms(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return min(times)  # fastest repetition: see compare.py


def run_cases(threads=1, repeats=3):
    """Fastest-of-repeats milliseconds per iteration, keyed by the C++ benchmark's name."""
    torch.set_num_threads(threads)
    results = {}
    for side, batch in [(28, 5), (28, 25), (28, 80), (28, 300), (84, 5), (84, 25)]:
        in_ch, filters = (3, 32) if side == 84 else (1, 64)
        params = conv4_params(in_ch, filters, side, 5)
        x = torch.rand(batch, in_ch, side, side)
        y = torch.arange(batch) % 5

        def step():
            w = [q.clone().requires_grad_() for q in params]
            return torch.autograd.grad(F.cross_entropy(conv4_forward(w, x), y), w)

        results[f"Conv4_ForwardBackward/{side}/{batch}/{threads}/real_time"] = best_ms(step, repeats)
    for side in (28, 84):
        in_ch, filters = (3, 32) if side == 84 else (1, 64)
        params = conv4_params(in_ch, filters, side, 5)
        xs, xq = torch.rand(5, in_ch, side, side), torch.rand(75, in_ch, side, side)
        ys, yq = torch.arange(5) % 5, torch.arange(75) % 5

        def maml():
            w = [q.clone().requires_grad_() for q in params]
            g = torch.autograd.grad(F.cross_entropy(conv4_forward(w, xs), ys), w, create_graph=True)
            fast = [wi - 0.4 * gi for wi, gi in zip(w, g)]
            return torch.autograd.grad(F.cross_entropy(conv4_forward(fast, xq), yq), w)

        results[f"Conv4_MamlSecondOrder/{side}/{threads}/real_time"] = best_ms(maml, repeats)
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    for name, ms in run_cases(args.threads, args.repeats).items():
        print(f"{name:40s} {ms:10.2f} ms")


if __name__ == "__main__":
    main()
