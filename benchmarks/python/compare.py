#!/usr/bin/python3
"""Runs a metalearn benchmark binary and its PyTorch peer in one go; prints a table.

    cmake --preset bench && cmake --build --preset bench -j2
    /usr/bin/python3 benchmarks/python/compare.py --suite autodiff   # conv4, maml, metric

Both sides run on one thread, float32, same shapes. The ratio is PyTorch time divided by
metalearn time (above 1: metalearn is faster). Each side reports the fastest of --repeats
repetitions (noise only adds time on a shared machine); --rounds N alternates the two
sides N times and keeps each case's fastest, so a slow phase of the machine (other
tenants) cannot fall on one side only.
"""
import argparse
import json
import os
import subprocess
import sys


def metalearn_best(binary, repeats):
    """Fastest of `repeats` repetitions per case, in microseconds. Noise on a shared machine
    only ever adds time, so the minimum is the most repeatable estimate; both sides use it."""
    out = subprocess.run(
        [binary, f"--benchmark_repetitions={repeats}", "--benchmark_format=json"],
        check=True, capture_output=True, text=True).stdout
    best = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("run_type") == "iteration":
            name = b["run_name"].removeprefix("BM_")
            scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[b["time_unit"]]
            best[name] = min(best.get(name, float("inf")), b["real_time"] * scale)
    return best


# suite: (benchmark binary, PyTorch peer module, microseconds per unit of the peer's figures)
SUITES = {
    "autodiff": ("bench_autodiff", "bench_autodiff_torch", 1.0),
    "conv4": ("bench_conv4", "bench_conv4_torch", 1000.0),
    "maml": ("bench_maml", "bench_maml_torch", 1.0),
    "metric": ("bench_metric", "bench_metric_torch", 1000.0),
    "rl": ("bench_rl", "bench_rl_torch", 1000.0),
}


def our_name(peer_name, ours, threads):
    """The metalearn case a PyTorch case is compared with: the same name, or for the MAML
    suite ("Maml_Sinusoid/loop", ".../batched") our run at the same thread count."""
    if peer_name in ours:
        return peer_name
    algo = peer_name.split("/")[0]
    for name in ours:  # e.g. "Maml_Omniglot/2/iterations:1/real_time"
        if name.startswith(f"{algo}/{threads}/") and name.endswith("real_time"):
            return name
    return None


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--suite", choices=sorted(SUITES), default="autodiff")
    ap.add_argument("--build-dir", default=os.path.join(here, "../../build/bench/benchmarks"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1,
                    help="alternate metalearn and PyTorch this many times, keep the fastest")
    ap.add_argument("--threads", type=int, default=1,
                    help="PyTorch's intra-op threads; MAML cases compare with our run on as many "
                         "threads (the other suites' cases run one thread on our side)")
    ap.add_argument("--openblas-coretype", default=None,
                    help="force OpenBLAS's kernel choice (e.g. SkylakeX). OpenBLAS 0.3.21 "
                         "detects some recent Xeons as 'Prescott' (SSE3 kernels); forcing the "
                         "right one gives PyTorch its best GEMM")
    args = ap.parse_args()
    if args.openblas_coretype:
        os.environ["OPENBLAS_CORETYPE"] = args.openblas_coretype  # read when OpenBLAS loads
    binary, module, peer_unit = SUITES[args.suite]
    sys.path.insert(0, here)
    import importlib
    import ctypes
    peer = importlib.import_module(module)  # after the environment is set
    try:
        blas = ctypes.CDLL("libblas.so.3")
        blas.openblas_get_corename.restype = ctypes.c_char_p
        print("PyTorch BLAS: OpenBLAS, kernels for", blas.openblas_get_corename().decode())
    except (OSError, AttributeError):
        print("PyTorch BLAS: not OpenBLAS (install libopenblas0)")
    ours, theirs = {}, {}
    for _ in range(args.rounds):
        for k, v in metalearn_best(os.path.join(args.build_dir, binary), args.repeats).items():
            ours[k] = min(ours.get(k, float("inf")), v)
        for k, v in peer.run_cases(threads=args.threads, repeats=args.repeats).items():
            theirs[k] = min(theirs.get(k, float("inf")), v * peer_unit)
    print(f"best of {args.repeats} x {args.rounds} round(s), PyTorch on {args.threads} thread(s)")
    print(f"{'case':40s} {'metalearn us':>13s} {'PyTorch us':>11s} {'ratio':>7s}")
    compared = set()
    for name, t in theirs.items():
        mine = our_name(name, ours, args.threads)
        if mine is not None:
            compared.add(mine)
            print(f"{name:40s} {ours[mine]:13.2f} {t:11.2f} {t / ours[mine]:6.1f}x")
    for name, t in ours.items():
        if name not in compared:
            print(f"{name:40s} {t:13.2f} {'-':>11s} {'-':>7s}")


if __name__ == "__main__":
    main()
