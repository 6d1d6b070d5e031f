#!/usr/bin/python3
"""The quality peer of examples/protonet_omniglot.cpp: the same recipe in PyTorch, trained
for the same wall time on exactly the same data and alphabet split.

    ./build/ci/examples/protonet_omniglot --export /tmp/og      # images and split
    /usr/bin/python3 benchmarks/python/protonet_omniglot_torch.py --data /tmp/og --minutes 10

Recipe (Snell et al. 2017): conv4 embedding (64 filters, batch norm with batch statistics,
as ours), squared Euclidean distance to the class means, 60-way 1-shot 5-query training
episodes, Adam 1e-3; then 5-way 1-shot 15-query and 20-way 1-shot test episodes of the held
out alphabets, mean accuracy with a 95% CI, printed as `final: acc=... ci=...`.
`--method matching [--fce] [--fce-steps K]` trains Matching Networks (Vinyals et al. 2016)
on the same episodes as `protonet_omniglot --method matching`: attention softmax(10 cos) over
the support set, optionally full-context embeddings (the same equations as
metalearn/learners/full_context_embedding.hpp: a bidirectional LSTM over the support set, an
attention LSTM with the read-out as a second recurrent input, h_0 = c_0 = 0).
"""
import argparse
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Conv4(nn.Module):
    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList()
        self.bns = nn.ModuleList()
        ch = 1
        for _ in range(4):
            self.convs.append(nn.Conv2d(ch, 64, 3, padding=1))
            self.bns.append(nn.BatchNorm2d(64))
            ch = 64

    def forward(self, x):
        for conv, bn in zip(self.convs, self.bns):
            # Batch statistics in training and evaluation alike (metalearn's default).
            x = F.batch_norm(conv(x), None, None, bn.weight, bn.bias, training=True)
            x = F.max_pool2d(F.relu(x), 2)
        return x.flatten(1)


def episode(by_class, classes, ways, shots, queries, rng, images):
    chosen = rng.choice(classes, size=ways, replace=False)
    support, query = [], []
    for c in chosen:
        idx = rng.choice(by_class[c], size=shots + queries, replace=False)
        support.append(idx[:shots])
        query.append(idx[shots:])
    xs = torch.from_numpy(images[np.concatenate(support)]).unsqueeze(1)
    xq = torch.from_numpy(images[np.concatenate(query)]).unsqueeze(1)
    yq = torch.arange(ways).repeat_interleave(queries)
    return xs, xq, yq


class FullContext(nn.Module):
    """g = h_fwd + h_bwd + g' (Appendix A.2); f = h_K with h_k = LSTM(f', [h, r], c) + f'."""

    def __init__(self, d, steps):
        super().__init__()
        self.steps = steps
        self.support = nn.LSTM(d, d, bidirectional=True)
        self.inp = nn.Linear(d, 4 * d)
        self.rec = nn.Linear(d, 4 * d, bias=False)
        self.readout = nn.Linear(d, 4 * d, bias=False)
        bound = 1 / math.sqrt(d)
        for w in (self.inp.weight, self.inp.bias, self.rec.weight, self.readout.weight):
            nn.init.uniform_(w, -bound, bound)

    def forward(self, gp, fp):
        out, _ = self.support(gp.unsqueeze(1))  # [S, 1, 2d]
        d = gp.shape[1]
        g = out[:, 0, :d] + out[:, 0, d:] + gp
        h = torch.zeros_like(fp)
        c = torch.zeros_like(fp)
        x = self.inp(fp)
        for _ in range(self.steps):
            r = torch.softmax(h @ g.t(), 1) @ g
            i, f, cand, o = (x + self.rec(h) + self.readout(r)).chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(cand)
            h = torch.sigmoid(o) * torch.tanh(c) + fp
        return g, h


def logits(net, xs, xq, ways, shots, method="protonet", fce=None, temperature=10.0):
    z = net(torch.cat([xs, xq]))
    s, q = z[: ways * shots], z[ways * shots:]
    if method == "matching":  # log P(y | x, S) (Eqs. 1-2): support in class order, shots each
        if fce is not None:
            s, q = fce(s, q)
        a = torch.softmax(temperature * F.normalize(q, dim=1) @ F.normalize(s, dim=1).t(), 1)
        return torch.log(a.view(len(q), ways, shots).sum(2))
    protos = s.view(ways, shots, -1).mean(1)
    return -((q.unsqueeze(1) - protos.unsqueeze(0)) ** 2).sum(2)


def score(net, by_class, classes, ways, shots, queries, count, seed, images, **method):
    rng = np.random.default_rng(seed)
    acc = []
    with torch.no_grad():
        for _ in range(count):
            xs, xq, yq = episode(by_class, classes, ways, shots, queries, rng, images)
            out = logits(net, xs, xq, ways, shots, **method)
            acc.append((out.argmax(1) == yq).float().mean().item())
    acc = np.array(acc)
    return acc.mean(), 1.96 * acc.std(ddof=1) / math.sqrt(len(acc))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--eval-episodes", type=int, default=600)
    ap.add_argument("--method", choices=["protonet", "matching"], default="protonet")
    ap.add_argument("--temperature", type=float, default=10.0)
    ap.add_argument("--fce", action="store_true")
    ap.add_argument("--fce-steps", type=int, default=1)
    args = ap.parse_args()
    if (args.fce or args.fce_steps != 1) and (args.method != "matching" or not args.fce):
        ap.error("--fce and --fce-steps go with --method matching --fce")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    images = np.fromfile(f"{args.data}/images.f32", dtype=np.float32).reshape(-1, 28, 28)
    labels = np.fromfile(f"{args.data}/labels.i64", dtype=np.int64)
    train = np.fromfile(f"{args.data}/train.i64", dtype=np.int64)
    test = np.fromfile(f"{args.data}/test.i64", dtype=np.int64)
    by_class = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    net = Conv4()
    fce = FullContext(64, args.fce_steps) if args.fce else None  # conv4's width at 28x28
    method = dict(method=args.method, fce=fce, temperature=args.temperature)
    trained = list(net.parameters()) + (list(fce.parameters()) if fce else [])
    opt = torch.optim.Adam(trained, 1e-3)
    rng = np.random.default_rng(args.seed)
    start, steps = time.time(), 0
    while time.time() - start < args.minutes * 60:
        xs, xq, yq = episode(by_class, train, 60, 1, 5, rng, images)
        out = logits(net, xs, xq, 60, 1, **method)
        loss = F.nll_loss(out, yq) if args.method == "matching" else F.cross_entropy(out, yq)
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
        if steps % 100 == 0:
            print(f"step {steps} loss {loss.item():.4f} {time.time() - start:.0f} s", flush=True)
    a5, c5 = score(net, by_class, test, 5, 1, 15, args.eval_episodes, args.seed + 101, images,
                   **method)
    a20, c20 = score(net, by_class, test, 20, 1, 15, args.eval_episodes, args.seed + 220, images,
                     **method)
    print(f"final: acc={a5:.4f} ci={c5:.4f} acc_20w1s={a20:.4f} ci_20w1s={c20:.4f} "
          f"steps={steps} seconds={time.time() - start:.2f}")


if __name__ == "__main__":
    main()
