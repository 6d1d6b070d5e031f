#!/usr/bin/python3
"""PyTorch peer of benchmarks/learners/bench_metric.cpp: the same conv4 embedding, shapes
and training steps (Adam), written as a PyTorch user would (torch.cdist-free squared
distances, as in Snell et al.'s reference code).

    /usr/bin/python3 benchmarks/python/bench_metric_torch.py [--threads 1] [--repeats 3]

Prints one line per case: name, fastest-of-repeats milliseconds per training step.
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv4_embedding():
    torch.manual_seed(3)
    layers = []
    ch = 1
    for _ in range(4):
        layers += [nn.Conv2d(ch, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2)]
        ch = 64
    return nn.Sequential(*layers, nn.Flatten())


def best_ms(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return min(times)  # fastest repetition: see compare.py


def squared_distances(a, b):
    return (a.unsqueeze(1) - b.unsqueeze(0)).pow(2).sum(2)


def run_cases(threads=1, repeats=3):
    torch.set_num_threads(threads)
    results = {}
    for ways, shots, queries in [(60, 5, 5), (5, 5, 15)]:
        net = conv4_embedding()
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        xs = torch.rand(ways * shots, 1, 28, 28)
        xq = torch.rand(ways * queries, 1, 28, 28)
        yq = torch.arange(ways).repeat_interleave(queries)

        def proto_step():
            z = net(torch.cat([xs, xq]))
            protos = z[: ways * shots].view(ways, shots, -1).mean(1)
            loss = F.cross_entropy(-squared_distances(z[ways * shots:], protos), yq)
            opt.zero_grad()
            loss.backward()
            opt.step()

        results[f"ProtoNet_Train/{ways}/{shots}/{queries}/{threads}/real_time"] = best_ms(proto_step, repeats)
    net = conv4_embedding()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    pairs = 128
    x1, x2 = torch.rand(pairs, 1, 28, 28), torch.rand(pairs, 1, 28, 28)
    y = (torch.arange(pairs) % 2).float()

    def siamese_step():
        z = net(torch.cat([x1, x2]))
        d = ((z[:pairs] - z[pairs:]).pow(2).sum(1) + 1e-12).sqrt()
        loss = ((1 - y) * d + y * F.relu(1.0 - d)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    results[f"Siamese_Train/{pairs}/{threads}/real_time"] = best_ms(siamese_step, repeats)
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
