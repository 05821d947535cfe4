"""fastpath: training settings chosen from the CPU's flags, image size and environment."""
import pytest

from effnet.train import TrainConfig
from effnet.machine import cpu_flags, native_bf16
from effnet.train.fastpath import BF16_MIN_PIXELS, choose_training_settings

AVX2 = frozenset({"avx", "avx2", "fma"})
SAPPHIRE = AVX2 | {"avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}


def test_bf16_is_not_chosen_without_native_bf16():
    s = choose_training_settings(224, flags=AVX2, cores=2, env={})
    assert (s.channels_last, s.amp, s.compile, s.threads) == (True, "none", False, 2)
    assert any("no AVX512-BF16" in r for r in s.reasons)


def test_bf16_is_chosen_with_native_bf16_from_the_threshold_size_up():
    assert choose_training_settings(BF16_MIN_PIXELS, flags=SAPPHIRE, cores=4, env={}).amp == "bf16"
    assert choose_training_settings(64, flags=SAPPHIRE, cores=4, env={}).amp == "none"
    assert choose_training_settings(160, flags=SAPPHIRE, cores=4, env={}).amp == "none"  # measured slower in bf16
    assert native_bf16(frozenset({"avx512_bf16"})) and not native_bf16(frozenset({"avx512f"}))


def test_omp_num_threads_is_kept_and_overrides_are_valid_config_keys():
    s = choose_training_settings(64, flags=AVX2, cores=8, env={"OMP_NUM_THREADS": "1"})
    assert s.threads is None and "threads" not in s.config_overrides()
    cfg = TrainConfig(**choose_training_settings(64, flags=AVX2, cores=3, env={}).config_overrides())
    assert cfg.channels_last and cfg.amp == "none" and cfg.threads == 3
    assert "NCHW" not in choose_training_settings(64, flags=AVX2, cores=1, env={}).describe()


def test_cpu_flags_reads_the_flags_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags\t\t: fpu avx2 avx512_bf16\n\nprocessor : 1\nflags : fpu\n")
    assert cpu_flags(info) == {"fpu", "avx2", "avx512_bf16"}
    assert cpu_flags(tmp_path / "missing") == frozenset()


@pytest.mark.parametrize("bad", [0, -3, True, "64"])
def test_bad_image_size_is_a_value_error(bad):
    with pytest.raises(ValueError):
        choose_training_settings(bad)
    with pytest.raises(ValueError):
        choose_training_settings(64, device="tpu")


def test_quick_train_starts_from_the_fast_settings_and_explicit_ones_win(monkeypatch):
    import effnet.train.quick as quick
    from effnet.arch import get_network, scale
    from train_helpers import tensor_splits

    seen = []
    real = quick.Trainer

    def spy(cfg, *args, **kwargs):
        seen.append(cfg)
        return real(cfg, *args, **kwargs)

    monkeypatch.setattr(quick, "Trainer", spy)
    tiny = scale(get_network("efficientnet_b0"), depth=0.25, width=0.25, resolution=1.0)
    fast = choose_training_settings(32, "cpu")
    quick.quick_train(tiny, tensor_splits(), img_size=32, epochs=1, batch_size=8, max_steps=1)
    quick.quick_train(tiny, tensor_splits(), img_size=32, epochs=1, batch_size=8, max_steps=1, channels_last=False)
    assert (seen[0].channels_last, seen[0].amp) == (fast.channels_last, fast.amp)
    assert seen[1].channels_last is False
