"""Predictor latency against the model's own ``predict_on_batch``, in one run.

A SmallerVGGNet Predictor at 96x96 (random weights: latency does not depend
on them). Interleaved, repeated calls:

(model)  ``model.predict_on_batch`` on one image already decoded in memory
         (the model's own latency, the baseline);
(file)   ``Predictor.predict([path])``: read, check, decode, resize,
         predict and decide for one JPEG file (one compiled function);
(eager)  the previous Predictor path for comparison: ``load_images``
         (eager decoding) then ``predict_on_batch``;
and batched throughput: ``Predictor.predict_scores`` on 32 files against
``predict_on_batch`` on 32 decoded images.

Beside them, at batch 1 and 64 on decoded images: ``Predictor.predict_scores``
on pixels, the run's ONNX export (``serving_model``, as ``export --format
onnx`` writes it) under ONNX Runtime, and the same SmallerVGGNet in PyTorch
eager (``torch_vgg.py``, channels-last, inference mode, as many threads as
TensorFlow). The ONNX and PyTorch rows are left out, saying why, when
tf2onnx/onnxruntime or torch are not installed.

Usage:
    python benchmarks/predict_latency.py [--repeats 60]
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


from multilabel_keras import LabelVocabulary, Predictor, build_model, from_folders  # noqa: E402
from multilabel_keras.data.demo import make_demo_folders  # noqa: E402
from multilabel_keras.data.images import load_images  # noqa: E402


def timed(fn, repeats):
    fn()  # trace and warm up
    fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def peer_calls(model, vocab, size, tmp, one, batch64):
    """ONNX Runtime and PyTorch eager calls at batch 1 and 64, and why any are left out."""
    calls, left_out = {}, {}
    try:
        import onnxruntime

        from multilabel_keras.inference.export import serving_model

        path = os.path.join(tmp, "model.onnx")
        signature = [__import__("keras").InputSpec(shape=(None, size, size, 3), dtype="float32")]
        serving_model(Predictor(model, vocab, 0.5, size)).export(
            path, format="onnx", verbose=False, input_signature=signature)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = len(os.sched_getaffinity(0))
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        calls["onnx_1"] = lambda: session.run(None, {name: one})
        calls["onnx_64"] = lambda: session.run(None, {name: batch64})
    except Exception as err:  # noqa: BLE001  an optional extra
        left_out["onnx"] = str(err).strip().splitlines()[0][:120]
    try:
        import torch

        import torch_vgg

        torch.set_num_threads(len(os.sched_getaffinity(0)))
        net = torch_vgg.SmallerVGGNet(vocab.num_labels).to(memory_format=torch.channels_last)
        calls["torch_1"] = lambda: torch_vgg.predict(net, one)
        calls["torch_64"] = lambda: torch_vgg.predict(net, batch64)
    except ImportError as err:
        left_out["torch"] = str(err)
    return calls, left_out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=60)
    parser.add_argument("--image-size", type=int, default=96)
    args = parser.parse_args(argv)
    size = args.image_size
    with tempfile.TemporaryDirectory() as tmp:
        root = make_demo_folders(os.path.join(tmp, "demo"), per_folder=2, size=size,
                                 log=lambda *_: None)
        samples = from_folders(root)
        paths = (list(samples.paths) * 4)[:32]
        vocab = LabelVocabulary().fit(samples.labels)
        model = build_model("smallervggnet", vocab.num_labels, (size, size, 3))
        predictor = Predictor(model, vocab, 0.5, size, batch_size=32)
        one = load_images(paths[:1], size)
        many = load_images(paths, size)
        batch64 = load_images((list(samples.paths) * 8)[:64], size)
        big = Predictor(model, vocab, 0.5, size, batch_size=64)
        calls = {
            "model": lambda: model.predict_on_batch(one),
            "file": lambda: predictor.predict(paths[:1]),
            "eager": lambda: model.predict_on_batch(load_images(paths[:1], size)),
            "model_32": lambda: model.predict_on_batch(many),
            "file_32": lambda: predictor.predict_scores(paths),
            "model_64": lambda: model.predict_on_batch(batch64),
            "pixels_64": lambda: big.predict_scores(batch64),
        }
        peers, left_out = peer_calls(model, vocab, size, tmp, one, batch64)
        calls.update(peers)
        times = {name: [] for name in calls}
        for _ in range(3):  # interleaved rounds
            for name, fn in calls.items():
                times[name] += timed(fn, args.repeats // 3)
    med = {name: statistics.median(v) for name, v in times.items()}
    print(f"SmallerVGGNet {size}x{size}, medians of {args.repeats} calls each, interleaved")
    print(f"{'call':<52} {'ms':>8} {'/ model':>8}")
    rows = [("model", "model.predict_on_batch, 1 decoded image", "model"),
            ("file", "Predictor.predict([path]), 1 file", "model"),
            ("eager", "before: load_images + predict_on_batch, 1 file", "model"),
            ("model_32", "model.predict_on_batch, 32 decoded images", "model_32"),
            ("file_32", "Predictor.predict_scores(32 files)", "model_32"),
            ("onnx_1", "ONNX Runtime, our export, 1 decoded image", "model"),
            ("torch_1", "PyTorch eager, 1 decoded image", "model"),
            ("model_64", "model.predict_on_batch, 64 decoded images", "model_64"),
            ("pixels_64", "Predictor.predict_scores(64 decoded images)", "model_64"),
            ("onnx_64", "ONNX Runtime, our export, 64 decoded images", "model_64"),
            ("torch_64", "PyTorch eager, 64 decoded images", "model_64")]
    for name, why in left_out.items():
        print(f"{name} left out: {why}")
    for key, label, base in [row for row in rows if row[0] in med]:
        print(f"{label:<52} {med[key] * 1e3:>8.2f} {med[key] / med[base]:>8.2f}")
    print(f"batched throughput: Predictor {32 / med['file_32']:.0f} images/s, "
          f"predict_on_batch {32 / med['model_32']:.0f} images/s")
    result = {"ms": {k: v * 1e3 for k, v in med.items()},
              "single_ratio": med["file"] / med["model"],
              "eager_ratio": med["eager"] / med["model"],
              "batched_images_per_s": 32 / med["file_32"],
              "pixels_64_per_torch": (med["pixels_64"] / med["torch_64"]
                                      if "torch_64" in med else None)}
    print("RESULT " + json.dumps(result))
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)
