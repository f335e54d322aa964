"""Peak memory of training and feature extraction for N and 10·N images: it should stay flat.

Each job runs in a fresh Python process (so one job's peak does not hide
another's) and reports its own peak resident set size:

train     ``train(..., "smallervggnet")`` for one epoch from JPEG files
          (streamed by ``make_dataset``);
features  ``extract_features`` (MobileNetV2) into a memory-mapped file, then
          ``train_on_features`` for two epochs reading rows from it.

Images are generated: coloured rectangles and discs on noise, labelled by
shape and colour, ``--size`` pixels square. Prints peak RSS per job for N
and 10·N images and the ratio (goal: within 1.2x).

Usage:
    python benchmarks/memory.py [--images 300] [--size 32]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

JOBS = ("train", "features")


def make_images(root, count, size, seed=0):
    """``count`` JPEG files in ``<colour>_<shape>/`` folders."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    colours = {"red": (40, 40, 220), "blue": (220, 60, 40), "green": (60, 180, 60)}
    for i in range(count):
        colour = list(colours)[i % 3]
        shape = ("square", "disc")[(i // 3) % 2]
        folder = os.path.join(root, f"{colour}_{shape}")
        os.makedirs(folder, exist_ok=True)
        image = rng.integers(0, 80, (size, size, 3), dtype=np.uint8)
        c, r = size // 2 + int(rng.integers(-size // 8, size // 8 + 1)), size // 4
        if shape == "square":
            cv2.rectangle(image, (c - r, c - r), (c + r, c + r), colours[colour], -1)
        else:
            cv2.circle(image, (c, c), r, colours[colour], -1)
        cv2.imwrite(os.path.join(folder, f"{i:06d}.jpg"), image)
    return root


def child(job, root, size, out):
    """Runs one job in this process and prints its peak RSS in MiB as JSON."""
    import warnings

    from multilabel_keras import from_folders, train
    from multilabel_keras.training.features import extract_features, train_on_features

    warnings.simplefilter("ignore")
    samples = from_folders(root)
    start = time.perf_counter()
    if job == "train":
        train(samples, out, "smallervggnet", image_size=size, epochs=1, verbose=0)
    else:
        extract_features(samples, os.path.join(out, "features"), "mobilenetv2", image_size=size,
                         verbose=0)
        train_on_features(os.path.join(out, "features"), os.path.join(out, "run"), epochs=2,
                          verbose=0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"peak_mib": peak, "seconds": time.perf_counter() - start}))


def run_job(job, root, size, tmp):
    out = tempfile.mkdtemp(dir=tmp)
    result = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", job, root,
                             str(size), out], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{job} on {root} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300, help="N (the second size is 10 N)")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--jobs", default=",".join(JOBS))
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        job, root, size, out = args.child
        child(job, root, int(size), out)
        return {}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        counts = (args.images, 10 * args.images)
        roots = {n: make_images(os.path.join(tmp, f"images_{n}"), n, args.size) for n in counts}
        print(f"peak RSS per job in a fresh process, {args.size}x{args.size} images")
        print(f"{'job':<10} {'N':>6} {'MiB':>8} {'10N':>6} {'MiB':>8} {'ratio':>6}")
        for job in args.jobs.split(","):
            small, large = (run_job(job, roots[n], args.size, tmp) for n in counts)
            ratio = large["peak_mib"] / small["peak_mib"]
            results[job] = {"small": small, "large": large, "ratio": ratio}
            print(f"{job:<10} {counts[0]:>6} {small['peak_mib']:>8.0f} {counts[1]:>6} "
                  f"{large['peak_mib']:>8.0f} {ratio:>6.2f}", flush=True)
    print("RESULT " + json.dumps({job: r["ratio"] for job, r in results.items()}
                                 | {f"{job}_mib": r["large"]["peak_mib"] for job, r in results.items()}))
    return results


if __name__ == "__main__":
    main()
    sys.exit(0)
