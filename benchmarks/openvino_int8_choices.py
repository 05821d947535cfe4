"""The two choices behind ``effnet.deploy.openvino_int8``, measured on the pretrained EfficientNet-Lite0:

1. converting the fp32 ONNX export at a static input shape before NNCF, against reading it with
   dynamic shapes (speed at batch 8 against our fp32 ONNX Runtime model, interleaved);
2. NNCF's full bias correction against its fast variant (top-1 agreement with fp32 and mean KL on
   the 56 reported photo views), every convolution INT8 in both.

    python benchmarks/openvino_int8_choices.py --out benchmarks/results/openvino-int8-choices.json
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args()
    import nncf
    import openvino as ov

    from effnet.deploy.export import export_onnx
    from effnet.deploy.loading import load_model_arg
    from effnet.deploy.paths import machine, mean_kl, onnx_runner, openvino_runner, photo_views, predict_logits
    from effnet.deploy.runtime import time_interleaved

    logging.getLogger("nncf").setLevel(logging.ERROR)
    model = load_model_arg("efficientnet_lite0", pretrained=True).eval()
    size = model.preprocessing.resolution
    calib = photo_views(model, size, calibration=True)
    views = photo_views(model, size)
    data = nncf.Dataset([calib[i:i + 1] for i in range(len(calib))])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fp32 = export_onnx(model, tmp / "fp32.onnx", example_size=size)
        graphs = {"dynamic": ov.Core().read_model(str(fp32)),
                  "static": ov.convert_model(str(fp32), input=[1, 3, size, size])}
        files = {}
        for name, kwargs in (("dynamic, full", ("dynamic", False)), ("static, full", ("static", False)),
                             ("static, fast", ("static", True))):
            graph, fast = kwargs
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                q = nncf.quantize(graphs[graph], data, subset_size=len(calib), fast_bias_correction=fast)
            files[name] = tmp / f"{name.replace(', ', '-')}.xml"
            ov.save_model(q, str(files[name]), compress_to_fp16=False)
        ref = onnx_runner(fp32)
        runners = {name: openvino_runner(f) for name, f in files.items()}
        ref_logits = predict_logits(ref, views)
        accuracy = {}
        for name, run in runners.items():
            logits = predict_logits(run, views)
            accuracy[name] = {"agreement": float(np.mean(logits.argmax(1) == ref_logits.argmax(1))),
                              "kl": mean_kl(ref_logits, logits), "views": len(views)}
        x = np.random.default_rng(0).standard_normal((8, 3, size, size), dtype=np.float32)
        timed = {"onnxruntime fp32": ref, **{n: runners[n] for n in ("dynamic, full", "static, full")}}
        for run in timed.values():
            for _ in range(3):
                run(x)
        times, _ = time_interleaved([lambda run=run: run(x) for run in timed.values()], args.repeats)
        medians = {name: float(np.median(t)) for name, t in zip(timed, times)}
    result = {"kind": "effnet.openvino-int8-choices", "machine": machine(), "batch": 8, "img_size": size,
              "calibration_images": len(calib), "repeats": args.repeats,
              "median_ms": {k: 1000 * v for k, v in medians.items()},
              "vs_onnxruntime_fp32": {k: medians["onnxruntime fp32"] / v for k, v in medians.items()},
              "accuracy": accuracy}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("vs_onnxruntime_fp32", "accuracy")}, indent=1))


if __name__ == "__main__":
    main()
