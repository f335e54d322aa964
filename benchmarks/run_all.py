"""Every speed and memory benchmark, one after another, summed up in one table.

Runs each script in its own process (CI-sized arguments, each under two
minutes on 2 cores), reads the ``RESULT`` line it prints and its peak
resident memory (``os.wait4``), and prints one table: the measure, its
baseline measured in the same run, the ratio, GFLOP/s and share of the
float32 matmul peak where the benchmark counts FLOPs, and peak RSS.

Usage:
    python benchmarks/run_all.py [--only train_throughput,predict_latency]
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

BENCHMARKS = {
    "train_throughput": ["--images", "320", "--rounds", "3", "--epochs", "1"],
    "eval_overhead": ["--images", "400", "--rounds", "3", "--epochs", "1"],
    "predict_latency": ["--repeats", "45"],
    "memory": ["--images", "300"],
}


def run(name, args):
    """Runs one benchmark; returns its RESULT dict, peak RSS (MiB) and wall time."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, f"{name}.py"), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=HERE)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{name} failed (exit {proc.returncode}):\n{out[-2000:]}")
    return json.loads(lines[-1][len("RESULT "):]), usage.ru_maxrss / 1024, time.perf_counter() - start


def rows(name, result, rss):
    """Table rows: (measure, value, baseline, ratio, GFLOP/s, of peak, RSS)."""
    if name == "train_throughput":
        peak, flop, ips = result["peak_gflops"], result["train_gflop"], result["images_per_s"]
        for key, label in (("a", "train: files + augmentation, float32 (img/s)"),
                           ("a16", "train: same, mixed_bfloat16 (img/s)"),
                           ("a16c", "train: same, bfloat16 with BN/first conv/head float32 (img/s)"),
                           ("ram", "train: in-RAM tf.data, no augmentation (img/s)")):
            yield (label, f"{ips[key]:.1f}", f"seed {ips['seed']:.1f}", ips[key] / ips["seed"],
                   f"{ips[key] * flop:.0f}", f"{ips[key] * flop / peak:.0%}", rss)
        for key, label in (("torch_files", "PyTorch eager: files via DataLoader (img/s)"),
                           ("torch_ram", "PyTorch eager: in RAM (img/s)"),
                           ("torch_compile", "PyTorch torch.compile: in RAM (img/s)")):
            if key in ips:  # torch.compile is left out where it does not run
                yield (label, f"{ips[key]:.1f}", f"library default {ips['a']:.1f}",
                       ips[key] / ips["a"], f"{ips[key] * flop:.0f}",
                       f"{ips[key] * flop / peak:.0%}", rss)
    elif name == "eval_overhead":
        sec = result["epoch_s"]
        for key, label in (("streamed", "epoch with exact mAP, validation decoded each epoch (s)"),
                           ("now", "epoch with exact mAP, validation in memory (s)")):
            yield (label, f"{sec[key]:.2f}", f"none {sec['none']:.2f}", sec[key] / sec["none"],
                   "", "", rss)
    elif name == "predict_latency":
        ms = result["ms"]
        yield ("Predictor.predict, 1 file (ms)", f"{ms['file']:.2f}",
               f"predict_on_batch {ms['model']:.2f}", result["single_ratio"], "", "", rss)
        yield ("before: eager decode + predict_on_batch (ms)", f"{ms['eager']:.2f}",
               f"predict_on_batch {ms['model']:.2f}", result["eager_ratio"], "", "", rss)
        yield ("Predictor, 32 files (img/s)", f"{result['batched_images_per_s']:.0f}",
               f"predict_on_batch {32e3 / ms['model_32']:.0f}", ms["model_32"] / ms["file_32"],
               "", "", rss)
    elif name == "memory":
        for job in ("train", "features"):
            yield (f"peak RSS, {job}, 10·N images (MiB)", f"{result[f'{job}_mib']:.0f}",
                   "N images", result[job], "", "", rss)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(BENCHMARKS))
    args = parser.parse_args(argv)
    table = []
    for name in args.only.split(","):
        result, rss, wall = run(name, BENCHMARKS[name])
        print(f"{name}: done in {wall:.0f} s", flush=True)
        table += list(rows(name, result, rss))
    print("\n| measure | value | baseline (same run) | ratio | GFLOP/s | of fp32 matmul peak "
          "| peak RSS MiB |\n|---|---|---|---|---|---|---|")
    for label, value, base, ratio, gflops, share, rss in table:
        print(f"| {label} | {value} | {base} | {ratio:.2f} | {gflops} | {share} | {rss:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
