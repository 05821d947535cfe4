"""The input size a model takes, resolved in one place."""
from types import SimpleNamespace

from effnet.weights.meta import DEFAULT_RESOLUTION, Preprocessing, input_size


def test_input_size_is_the_asked_size_else_the_models_preprocessing_else_the_default():
    with_prep = SimpleNamespace(preprocessing=Preprocessing(resolution=260))
    assert input_size(with_prep) == 260 and input_size(with_prep, 96) == 96
    assert input_size(object()) == DEFAULT_RESOLUTION == 224
    assert input_size(SimpleNamespace(preprocessing=None), None) == 224
