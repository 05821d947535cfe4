"""Where a run's images come from and how they are split, as one value (torch-free).

A study's config and the evaluator that trains its trials (the architecture search's too) hold a
:class:`DataSpec` instead of restating its fields; a training run's config builds one from its
keys (``TrainConfig.data_spec``); all read their data with :func:`effnet.data.load_data`. The
split rule itself (:func:`split_sizes`) lives here too.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping

from ..checks import check_int, check_range, optional
from ..errors import EffnetError


#: the share of a class carved out for validation, and for testing, where a source has no such split
VAL_FRACTION = 0.15
TEST_FRACTION = 0.15


def split_sizes(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """``(n_val, n_test)`` for a class of ``n`` images: rounded fractions, at least one image in a
    split whose fraction is non-zero once the class has three images, and always one left to train."""
    n_val, n_test = int(n * val_fraction + 0.5), int(n * test_fraction + 0.5)
    if n >= 3:
        n_val = max(n_val, 1) if val_fraction > 0 else 0
        n_test = max(n_test, 1) if test_fraction > 0 else 0
    while n_val + n_test > max(n - 1, 0):
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    return n_val, n_test


@dataclass(frozen=True)
class DataSpec:
    """A data source and its split: ``source`` as :func:`effnet.data.load_splits` reads it, the
    labelling ``task``, the split ``seed``, the validation and test fractions carved from the
    training images where the source has no such split, a per-class cap, and whether unreadable
    images are skipped (listed in ``Splits.skipped``) or fail the run."""

    source: str
    task: str = "default"
    seed: int = 0
    val_fraction: float = VAL_FRACTION
    test_fraction: float = TEST_FRACTION
    limit_per_class: int | None = None
    skip_bad_images: bool = False

    def check(self) -> "DataSpec":
        if not isinstance(self.source, str) or not self.source:
            raise EffnetError("data must name a data source")
        if not isinstance(self.task, str) or not self.task:
            raise EffnetError(f"task must be a name, got {self.task!r}")
        check_int("seed", self.seed, 0)
        check_range("val_fraction", self.val_fraction, 0.0, 1.0, high_open=True)
        check_range("test_fraction", self.test_fraction, 0.0, 1.0, high_open=True)
        if self.val_fraction + self.test_fraction >= 1.0:
            raise EffnetError(f"val_fraction + test_fraction must be below 1, got "
                              f"{self.val_fraction + self.test_fraction:g}")
        optional(check_int, "limit_per_class", self.limit_per_class, 1)
        if not isinstance(self.skip_bad_images, bool):
            raise EffnetError(f"skip_bad_images must be true or false, got {self.skip_bad_images!r}")
        return self

    def with_seed(self, seed: int) -> "DataSpec":
        return replace(self, seed=seed)

    def label(self) -> str:
        """The source as measured: name, labelling, per-class cap and non-default fractions."""
        extra = [f"task {self.task}"] if self.task != "default" else []
        if self.limit_per_class:
            extra.append(f"at most {self.limit_per_class} images per class")
        if (self.val_fraction, self.test_fraction) != (VAL_FRACTION, TEST_FRACTION):
            extra.append(f"validation {self.val_fraction:g}, test {self.test_fraction:g}")
        return f"{self.source} ({', '.join(extra)})" if extra else self.source

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DataSpec":
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise EffnetError(f"unknown data setting(s): {', '.join(unknown)}")
        return cls(**dict(data))
