#!/usr/bin/python3
"""PyTorch peer of benchmarks/autodiff/bench_autodiff.cpp, for side-by-side ratios.

Same shapes, float32, one thread (as the C++ benchmarks run). Needs Debian's python3-torch;
install libopenblas0 too, or PyTorch runs on the reference BLAS.

    /usr/bin/python3 benchmarks/python/bench_autodiff_torch.py [--threads 1] [--repeats 5]

Prints one line per case: name, fastest-of-repeats microseconds per iteration.
"""
import argparse
import time

import torch


def best_us(fn, min_time=0.5, repeats=5):
    fn()  # warm up
    n = 1
    while True:  # calibrate to ~min_time / repeats per measurement
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt > min_time / repeats:
            break
        n *= 2
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - t0) / n * 1e6)
    return min(times)  # fastest repetition: see compare.py


def run_cases(threads=1, repeats=5):
    """Fastest-of-repeats microseconds per iteration for each case, by the C++ benchmark's name."""
    torch.set_num_threads(threads)
    torch.manual_seed(2)

    one = torch.tensor(1.0001)

    def tiny_fb():
        x = one.clone().requires_grad_()
        y = x
        for _ in range(50):
            y = y * x + x
        (g,) = torch.autograd.grad(y, [x])
        return g

    def tiny_f():
        x = one.clone().requires_grad_()
        y = x
        for _ in range(50):
            y = y * x + x
        return y

    def matmul_fb(n, k, m):
        a = torch.rand(n, k) * 2 - 1
        b = torch.rand(k, m) * 2 - 1
        g = torch.rand(n, m) * 2 - 1

        def run():
            A = a.clone().requires_grad_()
            B = b.clone().requires_grad_()
            return torch.autograd.grad(A @ B, [A, B], g)

        return run

    sizes = [1, 40, 40, 1]
    params = []
    for i in range(3):
        bound = 1.0 / sizes[i] ** 0.5
        params.append((torch.rand(sizes[i], sizes[i + 1]) * 2 - 1) * bound)
        params.append((torch.rand(sizes[i + 1]) * 2 - 1) * bound)
    dirs = [torch.randn_like(p) for p in params]
    x = (torch.rand(10, 1) * 2 - 1) * 5
    y = torch.rand(10, 1) * 2 - 1

    def loss(w):
        h = torch.relu(x @ w[0] + w[1])
        h = torch.relu(h @ w[2] + w[3])
        return torch.nn.functional.mse_loss(h @ w[4] + w[5], y)

    def mlp_loss():
        with torch.no_grad():
            return loss(params)

    def mlp_grad():
        w = [p.clone().requires_grad_() for p in params]
        return torch.autograd.grad(loss(w), w)

    def mlp_hvp():
        w = [p.clone().requires_grad_() for p in params]
        g = torch.autograd.grad(loss(w), w, create_graph=True)
        dot = sum((gi * di).sum() for gi, di in zip(g, dirs))
        return torch.autograd.grad(dot, w)

    cases = [
        ("Tape_TinyOps_ForwardBackward", tiny_fb),
        ("Tape_TinyOps_Forward", tiny_f),
        ("Matmul_ForwardBackward/10/40/40", matmul_fb(10, 40, 40)),
        ("Matmul_ForwardBackward/256/256/256", matmul_fb(256, 256, 256)),
        ("Mlp_Loss", mlp_loss),
        ("Mlp_Gradient", mlp_grad),
        ("Mlp_HessianVectorProduct", mlp_hvp),
    ]
    return {name: best_us(fn, repeats=repeats) for name, fn in cases}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    results = run_cases(args.threads, args.repeats)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    for name, us in results.items():
        print(f"{name:45s} {us:10.2f} us")


if __name__ == "__main__":
    main()
