"""The fastest inference path for this machine, among those that keep the model's accuracy.

Candidate paths (all on the CPU): PyTorch eager fp32 (the reference), BatchNorm folded +
channels_last fp32, bf16 autocast + channels_last (only where the CPU computes bf16 natively:
AVX512-BF16 or AMX; PyTorch would emulate it elsewhere), ``torch.compile`` (Inductor with frozen
weights; optional, compiling takes minutes), ONNX Runtime fp32, OpenVINO fp32 and bf16 (the
exported ONNX graph compiled by OpenVINO's CPU plugin; bf16 only where the CPU has it), ONNX
Runtime INT8 (static post-training quantisation, as ``effnet quantize`` does) and OpenVINO INT8
(NNCF's post-training quantisation, :mod:`effnet.deploy.openvino_int8`). For both INT8 paths,
which of the first, high-resolution convolutions stay in fp32 is measured (:func:`int8_ladder`).

:func:`choose_paths` times every runnable candidate and, when asked, the peers' models exported
to ONNX Runtime (and, beside our OpenVINO paths, in OpenVINO too: the same engine with the peer's
network, shown but not counted as the best peer), interleaved
(:func:`effnet.deploy.runtime.time_interleaved`), and measures each
path's accuracy change: top-1 agreement with the fp32 reference on real photographs (views of
scikit-image's sample photos) and, given labelled held-out images, the paired accuracy difference
with a bootstrap interval and McNemar's exact p. The fastest path within :class:`Tolerance` is the
choice; :class:`PathCache` keeps it per machine (CPU, flags, library versions), model, batch size
and resolution.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .. import machine as host
from ..data import DataSpec, load_data, make_transforms
from ..checks import check_choice
from ..errors import EffnetError, missing_extra
from ..fsutil import atomic_write_text
from ..search.stats import bootstrap, matrices, paired_difference
from ..weights.meta import input_size
from .export import export_onnx
from .exported import deployment_metadata
from .openvino_int8 import quantize_openvino
from .peers import export_peer_onnx, peer_model
from .quantize import dataset_batches, eval_view, first_convolutions, quantize_onnx
from .runtime import BACKENDS, Runner, check_timing_args, openvino_runner, time_interleaved

#: Every candidate, in the order they are set up and shown; ``eager`` is the fp32 reference.
CANDIDATES = ("eager", "channels_last", "bf16", "compile", "onnxruntime", "openvino", "openvino_bf16", "int8",
              "openvino_int8")
#: What ``choose_paths`` tries unless told otherwise (compiling costs minutes, so it is opt-in).
DEFAULT_CANDIDATES = ("eager", "channels_last", "bf16", "onnxruntime", "openvino", "openvino_bf16", "int8",
                      "openvino_int8")
PRECISION = {"eager": "fp32", "channels_last": "fp32", "compile": "fp32", "onnxruntime": "fp32", "openvino": "fp32",
             "bf16": "bf16", "openvino_bf16": "bf16", "int8": "int8", "openvino_int8": "int8"}
#: The INT8 paths (calibrated, and judged by the INT8 tolerance).
INT8_PATHS = tuple(p for p in CANDIDATES if PRECISION[p] == "int8")
#: Images INT8 is calibrated on by default (training images with --data, else augmented photo views).
CALIBRATION_IMAGES = 300
#: Views of the sample photos, other than the reported ones, that :func:`int8_ladder` measures on.
LADDER_VIEWS = 64
#: Paths the peers' networks are also timed on (ONNX Runtime fp32 is the peers' reference path).
PEER_ENGINE_PATHS = ("openvino", "openvino_bf16")
#: Batch size the accuracy checks run at (the last batch is padded), so compiled graphs see one shape.
EVAL_BATCH = 8
#: scikit-image's colour sample photographs (bundled with the package, no download).
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
          "colorwheel")


@dataclass(frozen=True)
class Tolerance:
    """How much accuracy change a path may bring and still be chosen.

    Without labelled held-out data, a path needs top-1 agreement with the fp32 reference of at least
    ``min_agreement`` on the photo views; an INT8 path needs ``int8_min_agreement``, lower because
    several photos are no ImageNet scene at all (a nebula, a colour wheel, stained tissue), where the
    top two classes nearly tie and any rounding may swap them. The INT8 budget that speaks in points
    is the held-out one, on the anchor's scale: TensorFlow Lite's post-training INT8
    EfficientNet-Lite0 loses about 0.7 points of ImageNet top-1; INT8 here may lose 1.
    Given labelled data, the held-out accuracy decides instead
    (the photos are only a stand-in for it, and for a model trained on other images, such as grey
    clothing, natural photos are out of its domain, where a near tie flips on rounding alone): it may
    drop by at most ``max_drop_points`` (fp32 and bf16 paths) or ``int8_max_drop_points`` (INT8).
    The agreement is still reported.
    """

    min_agreement: float = 0.99
    max_drop_points: float = 0.1
    int8_max_drop_points: float = 1.0
    int8_min_agreement: float = 0.95

    def __post_init__(self) -> None:
        for value in (self.min_agreement, self.int8_min_agreement):
            if not 0.0 <= value <= 1.0:
                raise EffnetError(f"minimum agreement must be in [0, 1], got {value}")
        if self.max_drop_points < 0 or self.int8_max_drop_points < 0:
            raise EffnetError("accuracy tolerances must be >= 0 points")

    def verdict(self, path: str, agreement: float | None, delta_points: float | None) -> str:
        """Empty when within tolerance, else why not."""
        labelled = delta_points is not None
        if agreement is None and not labelled:
            return "accuracy change not measured"
        int8 = PRECISION[path] == "int8"
        needed = self.int8_min_agreement if int8 else self.min_agreement
        if agreement is not None and agreement < needed and not labelled:
            return f"top-1 agreement {100 * agreement:.1f}% < {100 * needed:.1f}%"
        limit = self.int8_max_drop_points if int8 else self.max_drop_points
        if labelled and -delta_points > limit:
            return f"held-out accuracy {delta_points:+.2f} points, beyond -{limit:g}"
        return ""

    def ladder_target(self, labelled: bool) -> float:
        """The agreement :func:`int8_ladder` asks of INT8: the photo tolerance, or with labelled data
        the agreement at which at most ``int8_max_drop_points`` of accuracy can change."""
        return 1 - self.int8_max_drop_points / 100 if labelled else self.int8_min_agreement


@dataclass
class PathResult:
    """One path at one batch size: speed, accuracy change, and whether it may be chosen."""

    path: str
    batch_size: int
    img_size: int
    impl: str = "effnet"  # or the peer library
    median_ms: float | None = None
    p95_ms: float | None = None
    throughput: float | None = None  # images / s at the median latency
    vs_fp32: float | None = None  # throughput / the eager fp32 reference's
    vs_onnxruntime: float | None = None  # throughput / our ONNX Runtime fp32 model's
    vs_best_peer: float | None = None
    agreement: float | None = None  # top-1 agreement with fp32 on the photo views
    agreement_images: int = 0
    kl: float | None = None  # mean KL divergence of the path's softmax from fp32's on the photo views, nats
    delta_points: float | None = None  # held-out top-1 accuracy minus fp32's, points
    delta_ci: tuple[float, float] | None = None  # paired bootstrap 95% interval, points
    mcnemar_p: float | None = None
    heldout_images: int = 0
    note: str = ""  # why skipped, or why outside the tolerance
    chosen: bool = False

    @property
    def ok(self) -> bool:
        return self.median_ms is not None


@dataclass
class PathReport:
    results: list[PathResult]
    tolerance: Tolerance
    repeats: int
    machine: dict
    heldout_name: str = ""
    fp32_top1: float | None = None  # the reference's held-out accuracy
    fp32_ci: tuple[float, float] | None = None
    calibration: str = ""  # what INT8 was calibrated on
    int8: dict = field(default_factory=dict)  # per INT8 path: int8_ladder's steps and choice

    def choice(self, batch_size: int) -> PathResult | None:
        return next((r for r in self.results if r.chosen and r.batch_size == batch_size), None)

    def to_dict(self) -> dict:
        return {"kind": "effnet.paths", "machine": self.machine, "tolerance": asdict(self.tolerance),
                "repeats": self.repeats, "heldout": self.heldout_name, "fp32_top1": self.fp32_top1,
                "fp32_top1_ci": self.fp32_ci, "calibration": self.calibration, "int8": self.int8,
                "results": [asdict(r) for r in self.results]}


# ----- the machine ---------------------------------------------------------------------------

def machine() -> dict:
    """What makes a timing valid only here: CPU model and flags, cores, library versions (installing or
    removing OpenVINO changes which paths exist, so its version is part of it too)."""
    cpu = host.cpu_model()
    flags = sorted(host.cpu_flags())
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = None
    try:
        from importlib.metadata import PackageNotFoundError, version

        ov_version = version("openvino")
    except PackageNotFoundError:
        ov_version = None
    simd = [f for f in flags if f.startswith(("avx", "amx", "fma", "sse4"))]
    return {"cpu": cpu, "simd_flags": simd, "flags_sha1": hashlib.sha1(" ".join(flags).encode()).hexdigest()[:12],
            "cores": host.cpu_count(), "torch": torch.__version__, "onnxruntime": ort_version, "openvino": ov_version,
            "python": platform.python_version()}


# ----- real images ---------------------------------------------------------------------------

def photo_views(model: nn.Module, img_size: int, calibration: bool = False, count: int = CALIBRATION_IMAGES,
                seed: int = 0, ladder: bool = False) -> np.ndarray:
    """Views of scikit-image's sample photos through the model's eval preprocessing: each photo
    whole, mirrored, and five crops of 70% of its side (corners and centre); 56 views, the ones
    accuracy is reported on. With ``calibration``, ``count`` augmented views instead (the training
    transform's random crops and flips, seeded by ``seed``, the photos taken in turn), for INT8
    calibration; with ``ladder``, ``count`` views like the reported ones but others (a random 50% to
    100% of the side at a random place, mirrored half the time, then the eval preprocessing), for
    :func:`int8_ladder`."""
    try:
        import skimage.data as photos
    except ImportError as exc:
        raise missing_extra(exc, "accuracy on sample photos") or exc
    from PIL import Image, ImageOps

    prep = getattr(model, "preprocessing", None)
    images = [Image.fromarray(getattr(photos, name)()).convert("RGB") for name in PHOTOS]
    if calibration:
        tf = make_transforms(prep, img_size, train=True, augment="none")
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return torch.stack([tf(images[i % len(images)]) for i in range(count)]).numpy()
    tf = make_transforms(prep, img_size, train=False)
    if ladder:
        rng = np.random.default_rng(seed)
        views = []
        for i in range(count):
            img = images[i % len(images)]
            w, h = img.size
            side = rng.uniform(0.5, 1.0)
            cw, ch = max(1, int(side * w)), max(1, int(side * h))
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            crop = img.crop((x, y, x + cw, y + ch))
            views.append(tf(ImageOps.mirror(crop) if rng.random() < 0.5 else crop))
        return torch.stack(views).numpy()
    views = []
    for img in images:
        w, h = img.size
        cw, ch = int(0.7 * w), int(0.7 * h)
        boxes = [(0, 0), (w - cw, 0), (0, h - ch), (w - cw, h - ch), ((w - cw) // 2, (h - ch) // 2)]
        crops = [img, ImageOps.mirror(img)] + [img.crop((x, y, x + cw, y + ch)) for x, y in boxes]
        views += [tf(c) for c in crops]
    return torch.stack(views).numpy()


def ladder_views(model: nn.Module, img_size: int) -> np.ndarray:
    """The photo views :func:`int8_ladder` measures on when there is no data of the user's."""
    return photo_views(model, img_size, count=LADDER_VIEWS, seed=1, ladder=True)


# ----- runners -------------------------------------------------------------------------------

def onnx_runner(path: Path) -> Runner:
    return BACKENDS["onnxruntime"].build(path)


def build_runner(model: nn.Module, path: str, workdir: Path, calibration: np.ndarray | None = None,
                 validation: np.ndarray | None = None, target: float | None = None) -> Runner:
    """A runner for ``path`` (one of :data:`CANDIDATES`); raises ``EffnetError`` when it cannot run here.

    ``calibration`` (float32 NCHW images) calibrates INT8's activation ranges; ``validation`` are the
    images :func:`int8_ladder` measures INT8's agreement on (default: the first calibration images)
    and ``target`` the agreement that ends it (default :data:`LADDER_AGREEMENT`).
    The ONNX and OpenVINO files are written to ``workdir``."""
    check_choice("path", path, CANDIDATES)
    backend = BACKENDS.get(path)
    if backend is not None:
        error = backend.unavailable()
        if error is not None:
            raise error
        if backend.source == "module":
            return backend.build(model)
    fp32 = Path(workdir) / "fp32.onnx"
    if not fp32.exists():
        export_onnx(model, fp32, example_size=int(calibration.shape[-1]) if calibration is not None else None)
    if backend is not None:
        return backend.build(fp32)
    if calibration is None or len(calibration) == 0:
        raise EffnetError("INT8 needs calibration images")
    return int8_ladder(lambda layers: _int8_at(path, fp32, Path(workdir), calibration, layers, model),
                       onnx_runner(fp32), calibration[:LADDER_VIEWS] if validation is None else validation,
                       target=LADDER_AGREEMENT if target is None else target)


#: How many of the first convolutions stay fp32 in INT8, in the order :func:`int8_ladder` tries
#: them: 0 quantises every one, 1 keeps the stem (EfficientNet's, which sees the raw pixels), 2 the
#: first stage's depthwise convolution too, and so on.
FLOAT_LAYERS = (0, 1, 2, 4, 8)
#: Top-1 agreement with fp32 on the ladder's images at which the ladder stops, unless told otherwise:
#: the chooser asks for its INT8 tolerance (95% on photos; with labelled data 99%, where at most 1 point
#: of accuracy can change).
LADDER_AGREEMENT = 0.95


def int8_ladder(quantize: Callable[[int], tuple[Runner, Path]], reference: Runner, images: np.ndarray,
                steps: Sequence[int] = FLOAT_LAYERS, target: float = LADDER_AGREEMENT) -> Runner:
    """The INT8 model that keeps the fewest early convolutions in fp32 and still agrees with
    ``reference`` (fp32) on ``target`` of ``images``' top-1 classes; if none does, the one that agrees
    most (the fewer fp32 layers on a tie).

    ``quantize(k)`` builds the INT8 model with the first ``k`` convolutions in fp32 and returns
    (runner, file). Each step is measured, not assumed: the INT8 error of the early, high-resolution
    layers differs by network and by calibration (on the pretrained Lite0, through NNCF, the stem
    alone carried most of it), and every fp32 layer costs speed. The returned runner carries
    ``runner.int8``: the layers kept, the file, the agreement of each step tried and the image count;
    ``images`` should be other than those the result is reported on (by default, views of the photos
    other than the reported ones, or held-out images of the user's data)."""
    ref = predict_top1(reference, images)
    best = None
    tried = []
    for k in steps:
        run, file = quantize(k)
        agreement = float(np.mean(predict_top1(run, images) == ref))
        tried.append({"fp32_layers": k, "agreement": agreement})
        if best is None or agreement > best[2]:
            best = (run, file, agreement, k)
        if agreement >= target:
            break
    run, file, agreement, k = best
    run.int8 = {"fp32_layers": k, "file": str(file), "ladder_images": len(images), "ladder": tried,
                "ladder_target": target}
    return run


def _int8_at(path: str, fp32: Path, workdir: Path, calibration: np.ndarray, layers: int,
             model: nn.Module) -> tuple[Runner, Path]:
    import onnx

    keep = first_convolutions(onnx.load(str(fp32), load_external_data=False).graph, layers)
    if path == "int8":
        out = workdir / f"int8-fp32x{layers}.onnx"
        if not out.exists():
            quantize_int8(fp32, out, calibration, keep_fp32=keep)
        return onnx_runner(out), out
    out = workdir / f"openvino-int8-fp32x{layers}.xml"
    if not out.exists():
        quantize_openvino(fp32, out, calibration, keep, deployment_metadata(model))
    return openvino_runner(out), out


#: At most this many images calibrate ONNX Runtime's INT8: its calibrator keeps every activation of
#: every image in memory (300 Lite0 images at 224 px ran a 24 GiB machine out of memory).
ORT_CALIBRATION_IMAGES = 64


def quantize_int8(fp32: Path, out: Path, calibration: np.ndarray, keep_fp32: Sequence[str] = ()) -> str:
    """INT8 QDQ model of ``fp32`` at ``out``, calibrated on the first :data:`ORT_CALIBRATION_IMAGES`
    of ``calibration``: percentile ranges as ``effnet quantize``, or min/max where the activations
    are too uniform for percentile's histogram (an untrained model's); the convolutions named in
    ``keep_fp32`` stay fp32. Returns the method used; ONNX Runtime's progress lines are swallowed."""
    import contextlib
    import io

    calibration = calibration[:ORT_CALIBRATION_IMAGES]
    batches = lambda: [calibration[i:i + 16] for i in range(0, len(calibration), 16)]  # noqa: E731
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            quantize_onnx(fp32, out, batches(), method="percentile", keep_fp32=keep_fp32)
            return "percentile"
        except ValueError:
            quantize_onnx(fp32, out, batches(), method="minmax", keep_fp32=keep_fp32)
            return "minmax"


def predict_logits(run: Runner, images: np.ndarray, batch: int = EVAL_BATCH) -> np.ndarray:
    """Logits of every image, in batches of ``batch`` (the last padded with zeros)."""
    out = []
    for i in range(0, len(images), batch):
        x = images[i:i + batch]
        n = len(x)
        if n < batch:
            x = np.concatenate([x, np.zeros((batch - n, *x.shape[1:]), dtype=x.dtype)])
        out.append(np.asarray(run(np.ascontiguousarray(x, dtype=np.float32)), dtype=np.float64)[:n])
    return np.concatenate(out) if out else np.zeros((0, 0))


def predict_top1(run: Runner, images: np.ndarray, batch: int = EVAL_BATCH) -> np.ndarray:
    """Top-1 class of every image, in batches of ``batch`` (the last padded with zeros)."""
    logits = predict_logits(run, images, batch)
    return logits.argmax(1) if len(logits) else np.zeros(0, dtype=np.int64)


def mean_kl(ref_logits: np.ndarray, logits: np.ndarray) -> float:
    """Mean over images of KL(softmax(ref) || softmax(logits)), in nats."""
    def log_softmax(z: np.ndarray) -> np.ndarray:
        z = z - z.max(1, keepdims=True)
        return z - np.log(np.exp(z).sum(1, keepdims=True))
    lp, lq = log_softmax(ref_logits), log_softmax(logits)
    return float(np.mean(np.sum(np.exp(lp) * (lp - lq), axis=1)))


# ----- accuracy ------------------------------------------------------------------------------

def paired_change(ref_correct: np.ndarray, new_correct: np.ndarray, draws: int = 2000) -> dict:
    """Held-out accuracy change (points) of ``new`` against ``ref`` on the same images: paired
    bootstrap 95% interval and McNemar's exact p (one model, one split: training noise not covered)."""
    from scipy.stats import binomtest

    d = paired_difference([new_correct.astype(float)], [ref_correct.astype(float)], draws=draws)
    worse = int(np.sum(ref_correct & ~new_correct))
    better = int(np.sum(~ref_correct & new_correct))
    p = float(binomtest(better, worse + better, 0.5).pvalue) if worse + better else 1.0
    return {"delta_points": 100 * d["diff"], "ci": (100 * d["ci_low"], 100 * d["ci_high"]), "mcnemar_p": p}


def _measure_accuracy(results: Sequence[PathResult], runners: dict[str, Runner], photos: np.ndarray | None,
                      heldout: tuple[np.ndarray, np.ndarray] | None, report: PathReport) -> None:
    ref = runners["eager"]
    ref_logits = predict_logits(ref, photos) if photos is not None else None
    ref_photo = ref_logits.argmax(1) if ref_logits is not None else None
    ref_correct = None
    if heldout is not None:
        images, labels = heldout
        ref_correct = predict_top1(ref, images) == labels
        report.fp32_top1 = float(ref_correct.mean())
        boot = bootstrap(matrices([[ref_correct.astype(float)]]), 2000, 0)[:, 0]
        report.fp32_ci = tuple(float(v) for v in np.percentile(boot, [2.5, 97.5]))
    measured: dict[str, dict] = {}
    for path, run in runners.items():
        m: dict = {}
        if ref_photo is not None:
            logits = predict_logits(run, photos)
            m["agreement"] = float(np.mean(logits.argmax(1) == ref_photo))
            m["agreement_images"] = len(ref_photo)
            m["kl"] = mean_kl(ref_logits, logits)
        if ref_correct is not None:
            change = paired_change(ref_correct, predict_top1(run, heldout[0]) == heldout[1])
            m.update(delta_points=change["delta_points"], delta_ci=change["ci"], mcnemar_p=change["mcnemar_p"],
                     heldout_images=len(ref_correct))
        measured[path] = m
    for r in results:
        if r.impl != "effnet":  # a peer's network is not ours: its agreement with our fp32 is not measured
            continue
        for k, v in measured.get(r.path, {}).items():
            setattr(r, k, v)


# ----- the chooser ---------------------------------------------------------------------------

def choose_paths(model: nn.Module, batch_sizes: Sequence[int] = (1,), img_size: int | None = None,
                 candidates: Sequence[str] = DEFAULT_CANDIDATES, peers: Sequence[str] = (),
                 repeats: int = 30, warmup: int = 2, tolerance: Tolerance = Tolerance(),
                 heldout: tuple[np.ndarray, np.ndarray] | None = None, heldout_name: str = "",
                 calibration: np.ndarray | None = None, photos: bool = True,
                 progress: Callable[[str], None] | None = None,
                 build: Callable[..., Runner] = build_runner, calibration_name: str = "",
                 validation: np.ndarray | None = None) -> PathReport:
    """Time ``candidates`` (and the ``peers``' models in ONNX Runtime) at each batch size, measure each
    path's accuracy change, and mark the fastest path within ``tolerance`` as chosen per batch size.

    ``heldout`` is (images float32 NCHW, labels) of labelled held-out data; ``calibration`` the images
    INT8 is calibrated on, described by ``calibration_name`` (default: :data:`CALIBRATION_IMAGES`
    augmented views of the sample photos); ``validation`` the images the INT8 ladder measures on
    (default: :data:`LADDER_VIEWS` other augmented views of the photos). ``build(model, path, workdir,
    calibration, validation=...)`` makes each runner. Paths that cannot run here (bf16 without native
    support, a failed compile, a missing extra) are listed with the reason."""
    say = progress or (lambda _msg: None)
    for p in candidates:
        if p not in CANDIDATES:
            raise EffnetError(f"unknown path {p!r}; choose from {', '.join(CANDIDATES)}")
    check_timing_args(batch_sizes, repeats, warmup)
    if not photos and heldout is None:
        raise EffnetError("accuracy needs the sample photos or labelled held-out data")
    candidates = ["eager"] + [p for p in candidates if p != "eager"]  # the reference always runs
    model = model.eval()
    size = input_size(model, img_size)
    chans = getattr(model, "in_chans", 3)
    report = PathReport([], tolerance, repeats, machine(), heldout_name)
    flush = torch.set_flush_denormal(True)  # as ONNX Runtime's sessions do (effnet.deploy.runtime)
    try:
        _choose(report, model, batch_sizes, size, chans, candidates, peers, repeats, warmup, tolerance, heldout,
                (calibration, calibration_name, validation), photos, say, build)
    finally:
        if flush:
            torch.set_flush_denormal(False)
    return report


def _choose(report, model, batch_sizes, size, chans, candidates, peers, repeats, warmup, tolerance, heldout,
            int8_data, photos, say, build) -> None:
    calibration, calibration_name, validation = int8_data
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        photo_images = photo_views(model, size) if photos else None
        ladder_target = None
        if any(p in INT8_PATHS for p in candidates):
            if calibration is None:
                if photos:
                    calibration = photo_views(model, size, calibration=True)
                    calibration_name = (f"{len(calibration)} augmented views (random crops and flips) of "
                                        f"scikit-image's {len(PHOTOS)} sample photos")
                else:
                    calibration = heldout[0][:CALIBRATION_IMAGES]
                    calibration_name = f"{len(calibration)} of the held-out images"
            if validation is None and photos:
                validation = ladder_views(model, size)
            ladder_target = tolerance.ladder_target(labelled=heldout is not None or not photos)
            report.calibration = calibration_name or f"{len(calibration)} given images"
        runners: dict[str, Runner] = {}
        skipped: dict[str, str] = {}
        for path in candidates:
            say(f"preparing {path}" + (" (quantising, measuring which first layers stay fp32)"
                                       if path in INT8_PATHS else ""))
            try:
                runners[path] = build(model, path, tmp, calibration, validation=validation, target=ladder_target)
            except Exception as exc:  # a path that cannot run here is reported, not fatal
                exc = missing_extra(exc, path) or exc
                skipped[path] = f"skipped: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}"
        for path, run in runners.items():
            if getattr(run, "int8", None):
                report.int8[path] = {k: v for k, v in run.int8.items() if k != "file"}
        engine_paths = [p for p in PEER_ENGINE_PATHS if p in runners]
        peer_runners = _peer_runners(model, peers, engine_paths, size, tmp, skipped, say)
        for batch in batch_sizes:
            rows = [PathResult(p, batch, size, note=skipped.get(p, "")) for p in candidates]
            rows += [PathResult("onnxruntime", batch, size, impl=impl, note=skipped.get(impl, "")) for impl in peers]
            rows += [PathResult(p, batch, size, impl=impl, note=skipped.get(f"{impl} {p}", "")) for impl in peers
                     for p in engine_paths if impl not in skipped]
            report.results += rows
        say("measuring accuracy on real images")
        _measure_accuracy(report.results, runners, photo_images, heldout, report)
        for batch in batch_sizes:
            rows = [r for r in report.results if r.batch_size == batch]
            x = np.random.default_rng(0).standard_normal((batch, chans, size, size), dtype=np.float32)
            timed = [(r, (runners.get(r.path) if r.impl == "effnet" else peer_runners.get((r.impl, r.path))))
                     for r in rows]
            timed = [(r, run) for r, run in timed if run is not None]
            say(f"batch {batch}: warming up and timing {len(timed)} paths, interleaved")
            _time(timed, x, repeats, warmup)
            _ratios_and_choice(rows, tolerance)


def _peer_runners(model, peers, engine_paths, size, tmp, skipped, say) -> dict[tuple[str, str], Runner]:
    """Runners keyed (peer, path): each peer's network in ONNX Runtime fp32, and on ``engine_paths``
    (our OpenVINO paths that run here) so that an engine's speed-up is not mistaken for the network's."""

    out: dict[tuple[str, str], Runner] = {}
    name = getattr(getattr(model, "desc", None), "name", "")
    for impl in peers:
        say(f"preparing {impl} in ONNX Runtime")
        peer = peer_model(impl, name)
        if isinstance(peer, str):
            skipped[impl] = f"skipped: {peer}"
            continue
        path = tmp / f"{impl}.onnx"
        export_peer_onnx(peer, path, torch.zeros(1, 3, size, size))
        out[(impl, "onnxruntime")] = onnx_runner(path)
        for engine_path in engine_paths:
            try:
                out[(impl, engine_path)] = openvino_runner(path, bf16=engine_path == "openvino_bf16")
            except Exception as exc:  # reported in the table, as our own paths are
                skipped[f"{impl} {engine_path}"] = f"skipped: {str(exc).splitlines()[0][:200]}"
    return out


def _time(timed: list[tuple[PathResult, Runner]], x: np.ndarray, repeats: int, warmup: int) -> None:
    for _, run in timed:
        for _ in range(warmup):
            run(x)
    all_times, errors = time_interleaved([lambda run=run: run(x) for _, run in timed], repeats)
    for (r, _), times, error in zip(timed, all_times, errors):
        if error is not None:
            r.note = f"skipped: {str(error).splitlines()[0][:200]}"
            continue
        r.median_ms = 1000 * float(np.median(times))
        r.p95_ms = 1000 * float(np.percentile(times, 95))
        r.throughput = r.batch_size * 1000 / r.median_ms


def _ratios_and_choice(rows: Sequence[PathResult], tolerance: Tolerance) -> None:
    ref = next((r for r in rows if r.impl == "effnet" and r.path == "eager" and r.ok), None)
    ort = next((r for r in rows if r.impl == "effnet" and r.path == "onnxruntime" and r.ok), None)
    # the peers' reference is their network in ONNX Runtime fp32; their rows on our other engines show
    # how much of a path's speed is the engine's, and are not the bar
    peer = max((r.throughput for r in rows if r.impl != "effnet" and r.path == "onnxruntime" and r.ok), default=None)
    for r in rows:
        if r.ok:
            r.vs_fp32 = r.throughput / ref.throughput if ref else None
            r.vs_onnxruntime = r.throughput / ort.throughput if ort else None
            r.vs_best_peer = r.throughput / peer if peer else None
    best = None
    for r in rows:
        if r.impl != "effnet" or not r.ok:
            continue
        why = tolerance.verdict(r.path, r.agreement, r.delta_points)
        if why:
            r.note = f"not chosen: {why}"
        elif best is None or r.throughput > best.throughput:
            best = r
    if best is not None:
        best.chosen = True


# ----- the per-machine cache -----------------------------------------------------------------

def cache_file() -> Path:
    """``$EFFNET_PATHS_CACHE``, else ``$XDG_CACHE_HOME/effnet/paths.json`` (``~/.cache`` by default)."""
    if os.environ.get("EFFNET_PATHS_CACHE"):
        return Path(os.environ["EFFNET_PATHS_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "effnet" / "paths.json"


def model_identity(spec: str | Path, pretrained: bool = False) -> str:
    """A model argument as a cache key: a file by its resolved path, size and modification time."""
    p = Path(spec)
    if p.is_file():
        st = p.stat()
        return f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    return f"{spec}{':pretrained' if pretrained else ''}"


@dataclass
class PathCache:
    """Chosen paths by model, batch size, resolution and machine, in one JSON file.

    A file that cannot be read as such is ignored (``warning`` says why) and replaced on the next
    :meth:`put`."""

    file: Path = field(default_factory=cache_file)
    warning: str = ""
    entries: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.file = Path(self.file)
        if not self.file.exists():
            return
        try:
            data = json.loads(self.file.read_text())
            if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
                raise ValueError("not an effnet path cache")
            self.entries = data["entries"]
        except (OSError, ValueError) as exc:
            self.warning = f"ignoring the unreadable path cache {self.file} ({str(exc).splitlines()[0][:100]})"

    @staticmethod
    def key(model_id: str, batch_size: int, img_size: int, where: dict | None = None) -> str:
        m = where or machine()
        return json.dumps([model_id, batch_size, img_size, m["cpu"], m["flags_sha1"], m["cores"], m["torch"],
                           m["onnxruntime"], m.get("openvino")])

    def get(self, model_id: str, batch_size: int, img_size: int) -> dict | None:
        return self.entries.get(self.key(model_id, batch_size, img_size))

    def put(self, model_id: str, report: PathReport) -> None:
        for r in report.results:
            if r.chosen:
                self.entries[self.key(model_id, r.batch_size, r.img_size, report.machine)] = {
                    "path": r.path, "throughput": r.throughput, "vs_fp32": r.vs_fp32, "agreement": r.agreement,
                    "delta_points": r.delta_points}
        self.file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.file, json.dumps({"format": "effnet.paths", "entries": self.entries}, indent=1) + "\n")
        self.warning = ""


# ----- reporting -----------------------------------------------------------------------------

def _f(value, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def paths_table(report: PathReport) -> str:
    """The per-path table with accuracy changes, the notes and the choice per batch size."""
    head = ("path", "impl", "batch", "px", "p50 ms", "p95 ms", "img/s", "vs fp32", "vs ORT fp32", "vs best peer",
            "agree", "KL", "held-out change (95% CI)")
    rows = [head]
    for r in report.results:
        change = "-" if r.delta_points is None else (
            f"{r.delta_points:+.2f} ({r.delta_ci[0]:+.2f}, {r.delta_ci[1]:+.2f})")
        agree = "-" if r.agreement is None else f"{100 * r.agreement:.1f}%"
        rows.append((r.path + (" *" if r.chosen else ""), r.impl, str(r.batch_size), str(r.img_size),
                     _f(r.median_ms, ".2f"), _f(r.p95_ms, ".2f"), _f(r.throughput, ".1f"), _f(r.vs_fp32, ".2f", "x"),
                     _f(r.vs_onnxruntime, ".2f", "x"), _f(r.vs_best_peer, ".2f", "x"), agree, _f(r.kl, ".4f"), change))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths))).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    n_agree = max((r.agreement_images for r in report.results), default=0)
    lines.append(f"median of {report.repeats} interleaved timed batches per row; agree = top-1 agreement with "
                 f"eager fp32 on {n_agree} views of scikit-image's sample photos, KL = mean KL divergence of the "
                 "path's class probabilities from fp32's on them (nats)" if n_agree else
                 f"median of {report.repeats} interleaved timed batches per row")
    if report.calibration:
        lines.append(f"INT8 calibrated on {report.calibration}")
    for path, info in report.int8.items():
        lines.append(f"{path}: {int8_kept(info)} (agreement with fp32 on {info['ladder_images']} other images, by "
                     f"first layers kept fp32: {ladder_text(info)})")
    if report.fp32_top1 is not None:
        lo, hi = report.fp32_ci
        n = max(r.heldout_images for r in report.results)
        lines.append(f"held-out: {report.heldout_name}, {n} images; eager fp32 top-1 {100 * report.fp32_top1:.2f}% "
                     f"({100 * lo:.2f}-{100 * hi:.2f}); change in points, paired bootstrap interval")
    t = report.tolerance
    if report.fp32_top1 is not None:
        lines.append(f"tolerance: held-out drop <= {t.max_drop_points:g} points (INT8: {t.int8_max_drop_points:g}); "
                     "the photo agreement is shown, not required, when labelled data decide")
    else:
        lines.append(f"tolerance: top-1 agreement >= {100 * t.min_agreement:g}% on the photos (INT8: "
                     f"{100 * t.int8_min_agreement:g}%; no labelled data; with labelled data INT8 may lose "
                     f"{t.int8_max_drop_points:g} point held-out, the anchor TensorFlow Lite INT8 Lite0 loses about 0.7 "
                     "on ImageNet)")
    if any(r.impl != "effnet" and r.path != "onnxruntime" for r in report.results):
        lines.append("vs best peer: against the peers' networks in ONNX Runtime fp32; the peers' rows on other engines "
                     "show how much of a path's speed is the engine's")
    for r in report.results:
        if r.note:
            lines.append(f"note: {r.impl} {r.path} batch {r.batch_size}: {r.note}")
    for b in dict.fromkeys(r.batch_size for r in report.results):
        c = report.choice(b)
        peer = f", {c.vs_best_peer:.2f}x the best peer" if c and c.vs_best_peer else ""
        lines.append(f"choice for batch {b}: {c.path} ({c.throughput:.1f} img/s, {c.vs_fp32:.2f}x eager fp32{peer})"
                     if c else f"choice for batch {b}: none (no path ran within the tolerance)")
    return "\n".join(lines)


# ----- what the commands share ---------------------------------------------------------------

def int8_kept(info: dict) -> str:
    """What an INT8 model of :func:`int8_ladder` keeps in fp32, in words."""
    k = info["fp32_layers"]
    return "every convolution INT8" if k == 0 else f"the first {k} convolution{'s' if k > 1 else ''} kept fp32"


def ladder_text(info: dict) -> str:
    steps = ", ".join(f"{s['fp32_layers']}: {100 * s['agreement']:.1f}%" for s in info["ladder"])
    return f"{steps}; stops at {100 * info['ladder_target']:g}%"


def labelled_arrays(source: str, model: nn.Module, img_size: int, seed: int = 0, eval_split: str = "test",
                    eval_limit: int | None = None, calib_images: int = CALIBRATION_IMAGES,
                    ladder_images: int = 200) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray, np.ndarray]:
    """(held-out images, labels), INT8 calibration images (training images through the eval
    transforms, as ``effnet quantize``) and the images :func:`int8_ladder` measures on (validation
    images, so the INT8 layers are chosen on neither the calibration nor the held-out images) of a
    data source :func:`effnet.data.load_data` reads."""
    from torch.utils.data import DataLoader, Subset

    splits = load_data(DataSpec(source, seed=seed), img_size=img_size,
                       preprocessing=getattr(model, "preprocessing", None))
    if getattr(model, "num_classes", splits.num_classes) != splits.num_classes:
        raise EffnetError(f"the model has {model.num_classes} classes but {source} has {splits.num_classes}; "
                          "use a model fine-tuned on this data")
    held = getattr(splits, eval_split)
    if eval_limit is not None:
        held = Subset(held, range(min(eval_limit, len(held))))
    xs, ys = [], []
    for x, y in DataLoader(held, batch_size=32, shuffle=False, num_workers=0):
        xs.append(x.numpy())
        ys.append(np.asarray(y))
    if not xs:
        raise EffnetError(f"the {eval_split} split of {source} is empty")
    calib = np.concatenate(list(dataset_batches(eval_view(splits.train, splits.val), calib_images)))
    ladder = list(dataset_batches(splits.val, ladder_images))
    return (np.concatenate(xs), np.concatenate(ys)), calib, np.concatenate(ladder) if ladder else calib[:LADDER_VIEWS]


def cached_or_measured(model: nn.Module, model_id: str, batch_size: int, img_size: int,
                       cache: PathCache | None = None, repeats: int = 10) -> tuple[str, bool]:
    """The cached choice for this model, batch size and resolution on this machine, or one measured
    now (sample photos for accuracy, default candidates, no peers) and cached. Returns (path, measured)."""
    cache = cache or PathCache()
    hit = cache.get(model_id, batch_size, img_size)
    if hit is not None:
        return hit["path"], False
    report = choose_paths(model, [batch_size], img_size, repeats=repeats, warmup=1)
    chosen = report.choice(batch_size)
    if chosen is None:
        raise EffnetError("no inference path ran within the accuracy tolerance")
    cache.put(model_id, report)
    return chosen.path, True
