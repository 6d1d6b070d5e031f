#!/usr/bin/python3
"""PyTorch peer of benchmarks/learners/bench_rl.cpp: one MAML-TRPO meta-iteration on 2-D
navigation (Finn et al. 2017, §5.3) with pytorch-maml-rl's recipe and its TRPO step
(maml_rl/metalearners/maml_trpo.py): Gaussian MLP policy 2-64-64-2 (tanh, state-independent
log-std), 20 tasks, 20 episodes of 100 steps per task for the support and for the query
rollouts, the linear feature baseline fitted per task, GAE (lambda 1, gamma 0.99,
normalised advantages), one inner step alpha 0.1 with create_graph, then TRPO: the KL's
gradient recorded once per task and reused for 10 conjugate-gradient Hessian-vector
products (damping 1e-5), max KL 0.01, backtracking line search (ratio 0.8, up to 15 steps).
The environments are simulated in torch, batched over the 20 episodes (stronger than
pytorch-maml-rl's gym SyncVectorEnv in numpy), as a PyTorch user who cares would write it.

    /usr/bin/python3 benchmarks/python/bench_rl_torch.py [--threads 1] [--repeats 2]

Prints one line per case: name, fastest-of-repeats milliseconds per meta-iteration.
"""
import argparse
import math
import time

import torch
import torch.nn.functional as F

H, E, TASKS, ALPHA, GAMMA = 100, 20, 20, 0.1, 0.99


def init_params(gen):
    def linear(i, o):
        bound = 1 / math.sqrt(i)
        w = (torch.rand(o, i, generator=gen) * 2 - 1) * bound
        b = (torch.rand(o, generator=gen) * 2 - 1) * bound
        return [w.requires_grad_(), b.requires_grad_()]
    return linear(2, 64) + linear(64, 64) + linear(64, 2) + [torch.zeros(2, requires_grad=True)]


def forward(p, x):
    h = torch.tanh(F.linear(x, p[0], p[1]))
    h = torch.tanh(F.linear(h, p[2], p[3]))
    return F.linear(h, p[4], p[5]), p[6]


def log_prob(p, obs, act):
    mu, ls = forward(p, obs)
    z = (act - mu) * torch.exp(-ls)
    return (-0.5 * z * z - ls - 0.5 * math.log(2 * math.pi)).sum(-1)


def kl_old_new(mu_o, ls_o, mu, ls):
    return (ls - ls_o + (torch.exp(2 * ls_o) + (mu_o - mu) ** 2) * torch.exp(-2 * ls) * 0.5
            - 0.5).sum(-1).mean()


def rollout(p, goal, gen):
    obs = torch.zeros(E, 2)
    os, acts, rews = [], [], []
    with torch.no_grad():
        for _ in range(H):
            mu, ls = forward(p, obs)
            a = mu + torch.exp(ls) * torch.randn(E, 2, generator=gen)
            os.append(obs)
            acts.append(a)
            obs = obs + a.clamp(-0.1, 0.1)
            rews.append(-torch.linalg.norm(obs - goal, dim=1))
    return torch.stack(os), torch.stack(acts), torch.stack(rews)  # [H,E,2] [H,E,2] [H,E]


def advantages(obs, rew):
    ret = torch.zeros_like(rew)
    acc = torch.zeros(E)
    for t in reversed(range(H)):
        acc = rew[t] + GAMMA * acc
        ret[t] = acc
    t = (torch.arange(H, dtype=torch.float32) / 100).view(H, 1, 1).expand(H, E, 1)
    feat = torch.cat([obs, obs ** 2, t, t ** 2, t ** 3, torch.ones(H, E, 1)], 2).view(-1, 8)
    w = torch.linalg.solve(feat.t() @ feat + 1e-5 * torch.eye(8), feat.t() @ ret.view(-1, 1))
    values = (feat @ w).view(H, E)
    values = torch.cat([values, torch.zeros(1, E)])
    deltas = rew + GAMMA * values[1:] - values[:-1]
    adv = torch.zeros_like(rew)
    g = torch.zeros(E)
    for t in reversed(range(H)):
        g = g * GAMMA + deltas[t]
        adv[t] = g
    return (adv - adv.mean()) / (adv.std(unbiased=False) + 1e-8)


def adapt(p, support, create_graph):
    obs, act, adv = support
    loss = -(log_prob(p, obs, act) * adv).mean()
    grads = torch.autograd.grad(loss, p, create_graph=create_graph)
    return [w - ALPHA * g for w, g in zip(p, grads)]


def meta_iteration(p, gen):
    goals = torch.rand(TASKS, 2, generator=gen) - 0.5
    data = []
    for goal in goals:
        obs, act, rew = rollout(p, goal, gen)
        support = (obs, act, advantages(obs, rew))
        fast = [w.detach() for w in adapt(p, support, False)]
        qobs, qact, qrew = rollout(fast, goal, gen)
        data.append((support, (qobs, qact, advantages(qobs, qrew))))

    def surrogate(old=None):
        losses, kls, olds = [], [], []
        for i, (support, (qobs, qact, qadv)) in enumerate(data):
            fast = adapt(p, support, create_graph=old is None)
            with torch.set_grad_enabled(old is None):
                mu, ls = forward(fast, qobs)
                o = (mu.detach(), ls.detach()) if old is None else old[i]
                z = (qact - mu) * torch.exp(-ls)
                zo = (qact - o[0]) * torch.exp(-o[1])
                log_ratio = (-0.5 * z * z - ls).sum(-1) - (-0.5 * zo * zo - o[1]).sum(-1)
                losses.append(-(torch.exp(log_ratio) * qadv).mean())
                kls.append(kl_old_new(o[0], o[1].expand_as(o[0]), mu, ls.expand_as(mu)))
                olds.append(o)
        return sum(losses) / TASKS, sum(kls) / TASKS, olds

    old_loss, old_kl, olds = surrogate()
    g = torch.cat([x.reshape(-1) for x in torch.autograd.grad(old_loss, p, retain_graph=True)])
    gk = torch.cat([x.reshape(-1) for x in torch.autograd.grad(old_kl, p, create_graph=True)])

    def hvp(v, retain=True):
        h = torch.autograd.grad(torch.dot(gk, v), p, retain_graph=retain)
        return torch.cat([x.reshape(-1) for x in h]) + 1e-5 * v

    x = torch.zeros_like(g)
    r, d = g.clone(), g.clone()
    rr = torch.dot(r, r)
    for _ in range(10):
        z = hvp(d)
        a = rr / torch.dot(d, z)
        x += a * d
        r -= a * z
        nrr = torch.dot(r, r)
        if nrr < 1e-10:
            break
        d = r + nrr / rr * d
        rr = nrr
    step = x / torch.sqrt(0.5 * torch.dot(x, hvp(x, retain=False)) / 0.01)
    flat = torch.cat([w.detach().reshape(-1) for w in p])

    def assign(vec):
        at = 0
        with torch.no_grad():
            for w in p:
                w.copy_(vec[at:at + w.numel()].view_as(w))
                at += w.numel()

    frac = 1.0
    for _ in range(15):
        assign(flat - frac * step)
        loss, kl, _ = surrogate(olds)
        if loss.item() < old_loss.item() and kl.item() < 0.01:
            return
        frac *= 0.8
    assign(flat)


def run_cases(threads=1, repeats=2):
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(1)
    p = init_params(gen)
    meta_iteration(p, gen)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        meta_iteration(p, gen)
        times.append((time.perf_counter() - t0) * 1e3)
    rollout_times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        rollout(p, torch.zeros(2), gen)
        rollout_times.append((time.perf_counter() - t0) * 1e3)
    return {"MamlTrpo_Navigation": min(times), "Rollout_Navigation": min(rollout_times)}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    for name, ms in run_cases(args.threads, args.repeats).items():
        print(f"{name:40s} {ms:10.2f} ms")
