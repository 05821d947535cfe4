"""Analysis: inference benchmarks against peer implementations, class activation maps, and a
static HTML report of runs, studies and benchmarks.

``analysis`` comes after ``deploy`` in the layering: benchmarks time the exported and quantised
paths that ``effnet.deploy`` makes; ``deploy`` never imports ``analysis``.
"""
from ..lazy import lazy_getattr

_LAZY = {
    "BenchResult": "bench", "run_bench": "bench", "bench_table": "bench", "PATHS": "bench", "PEERS": "bench",
    "class_activation_maps": "cam", "cam_figure": "cam",
    "build_report": "report", "write_report": "report",
    "plot_bench": "plots",
}
__all__ = sorted(_LAZY)

__getattr__ = lazy_getattr(__name__, _LAZY)
