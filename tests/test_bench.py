"""effnet bench: our paths and peers timed in one run, ratios to the best peer, JSON and plot."""
from __future__ import annotations

import json
import mmap
import sys

import pytest

import effnet.cli as cli
from effnet.analysis.bench import BenchResult, PeakRSS, _add_ratios, bench_table, peer_model, run_bench
from effnet.arch import get_network, scale
from effnet.deploy.runtime import time_interleaved


@pytest.fixture
def tiny_json(tmp_path):
    path = tmp_path / "tiny.json"
    scale(get_network("efficientnet_b0"), width=0.25, depth=0.3, image_size=32, name="tiny_b0").save(path)
    return path


def test_ratios_compare_each_row_with_the_best_peer_of_its_setting():
    rows = [BenchResult("m", "effnet", "eager", 1, 32, throughput=30.0),
            BenchResult("m", "torchvision", "eager", 1, 32, throughput=10.0),
            BenchResult("m", "torchvision", "onnxruntime", 1, 32, throughput=20.0),
            BenchResult("m", "timm", "eager", 1, 32, note="skipped: timm is not installed"),
            BenchResult("m", "effnet", "eager", 8, 32, throughput=50.0)]
    _add_ratios(rows)
    assert rows[0].vs_best_peer == pytest.approx(1.5)
    assert rows[2].vs_best_peer == pytest.approx(1.0)
    assert rows[3].vs_best_peer is None and rows[4].vs_best_peer is None  # no peer ran at batch 8
    table = bench_table(rows, repeats=5)
    assert "1.50x" in table and "note: m timm eager batch 1: skipped: timm is not installed" in table


def test_peak_memory_sees_a_large_allocation():
    size = 64 * 2**20
    with PeakRSS() as mem:
        # an anonymous mapping gets fresh pages; writing touches them all (a malloc'd block could
        # reuse pages this test process already holds from earlier tests)
        block = mmap.mmap(-1, size)
        block.write(b"\x01" * size)
    block.close()
    assert mem.peak_mib is not None and mem.peak_mib >= 40


def test_eager_and_onnxruntime_paths_run_with_latency_percentiles(tiny_json):
    rows = run_bench([str(tiny_json)], batch_sizes=[1, 2], img_size=32, paths=["eager", "onnxruntime"],
                     peers=[], repeats=3, warmup=1)
    assert [(r.path, r.batch_size) for r in rows] == [("eager", 1), ("onnxruntime", 1), ("eager", 2),
                                                     ("onnxruntime", 2)]
    for r in rows:
        assert r.ok and r.throughput > 0 and 0 < r.p50_ms <= r.p95_ms
        assert r.vs_best_peer is None


def test_a_custom_description_has_no_peer_and_says_so(tiny_json):
    rows = run_bench([str(tiny_json)], batch_sizes=[1], img_size=32, paths=["eager"], peers=["torchvision"],
                     repeats=1, warmup=0)
    peer_rows = [r for r in rows if r.impl == "torchvision"]
    assert peer_rows and all(not r.ok and "torchvision has no tiny_b0" in r.note for r in peer_rows)


def test_missing_timm_gives_a_clear_note(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm now raises ImportError
    assert "timm is not installed" in peer_model("timm", "efficientnet_b0")


def test_bench_command_compares_with_torchvision_and_writes_json_and_plot(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "COMMANDS", ["bench"])
    out_json, out_png = tmp_path / "bench.json", tmp_path / "bench.png"
    code = cli.main(["bench", "--models", "efficientnet_b0", "--batch-sizes", "1", "--img-size", "32",
                     "--paths", "eager,onnxruntime", "--peers", "torchvision", "--repeats", "2", "--warmup", "1",
                     "--json", str(out_json), "--plot", str(out_png)])
    assert code == 0
    table = capsys.readouterr().out
    assert "vs best peer" in table and "torchvision" in table
    data = json.loads(out_json.read_text())
    assert data["kind"] == "effnet.bench"
    assert {"date", "cpu", "cores", "versions", "load_average"} <= set(data["environment"])
    impls = {(r["impl"], r["path"]) for r in data["results"]}
    assert impls == {("effnet", "eager"), ("effnet", "onnxruntime"), ("torchvision", "eager"),
                     ("torchvision", "onnxruntime")}
    best_peer = max(r["throughput"] for r in data["results"] if r["impl"] == "torchvision")
    for r in data["results"]:
        assert r["vs_best_peer"] == pytest.approx(r["throughput"] / best_peer)
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_command_rejects_unknown_paths(monkeypatch, capsys):
    monkeypatch.setattr(cli, "COMMANDS", ["bench"])
    assert cli.main(["bench", "--paths", "eager,warp"]) == 2
    assert capsys.readouterr().err.startswith("effnet bench: error: unknown path 'warp'")


def test_interleaved_timing_visits_paths_in_turn_with_one_untimed_call_after_each_switch():
    calls: list[str] = []
    runners = [lambda: calls.append("a"), lambda: calls.append("b")]
    times, errors = time_interleaved(runners, repeats=5, rounds=2, settle=0)
    assert [len(t) for t in times] == [5, 5]
    assert errors == [None, None]
    # round 1 times 3 calls of each, round 2 times 2; each visit starts with an untimed call
    assert "".join(calls) == "aaaa" + "bbbb" + "aaa" + "bbb"


def test_interleaved_timing_drops_a_failing_path_and_keeps_timing_the_others():
    count = {"n": 0}

    def flaky():
        count["n"] += 1
        if count["n"] == 3:
            raise RuntimeError("out of memory")

    times, errors = time_interleaved([flaky, lambda: None], repeats=6, rounds=3, settle=0)
    assert isinstance(errors[0], RuntimeError) and errors[1] is None
    assert len(times[1]) == 6 and len(times[0]) < 6


def test_interleaved_timing_defaults_to_short_visits_of_at_most_five_calls():
    calls: list[str] = []
    time_interleaved([lambda: calls.append("a"), lambda: calls.append("b")], repeats=12, settle=0)
    runs = "".join(calls).replace("ab", "a|b").replace("ba", "b|a").split("|")
    assert all(len(r) - 1 <= 5 for r in runs), runs  # one untimed call per visit
    assert calls.count("a") == 12 + len([r for r in runs if r[0] == "a"])


def test_table_names_our_fastest_path_per_setting():
    rows = [BenchResult("m", "effnet", "eager", 1, 32, throughput=30.0),
            BenchResult("m", "effnet", "int8", 1, 32, throughput=45.0),
            BenchResult("m", "effnet", "bf16", 1, 32, note="skipped: no bf16"),
            BenchResult("m", "torchvision", "onnxruntime", 1, 32, throughput=30.0)]
    _add_ratios(rows)
    assert "fastest: m batch 1 32px: int8 (45.0 img/s, 1.50x the best peer)" in bench_table(rows, repeats=5)


def test_bf16_path_is_skipped_on_a_cpu_without_native_bf16(monkeypatch, tiny_json):
    import effnet.machine as machine

    monkeypatch.setattr(machine, "cpu_flags", lambda: frozenset({"avx2"}))
    rows = run_bench([str(tiny_json)], batch_sizes=[1], img_size=32, paths=["bf16", "eager"], peers=[],
                     repeats=1, warmup=0)
    assert not rows[0].ok and "no AVX512-BF16 or AMX" in rows[0].note
    assert rows[1].ok
