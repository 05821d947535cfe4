"""Deployment: ONNX / TorchScript export with dynamic shapes, ONNX Runtime
sessions, INT8 static quantisation, and top-k prediction on image files.

    from effnet.deploy import export_onnx, verify_onnx, quantize_onnx, predict
"""
_LAZY = {
    "fold_batchnorm": "export",
    "load_model_arg": "loading",
    "export_onnx": "export", "export_torchscript": "export",
    "prepare_for_export": "export", "verify_onnx": "export", "verify_torchscript": "export",
    "check_sizes": "export", "Check": "export",
    "ort_session": "runtime", "run_session": "runtime",
    "quantize_onnx": "quantize", "quantize_model": "quantize", "evaluate_onnx": "quantize",
    "QuantizeReport": "quantize",
    "Prediction": "predict", "predict_files": "predict",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
