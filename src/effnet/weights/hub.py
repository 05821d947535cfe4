"""Published ImageNet weights, fetched and cached through ``torch.hub``.

Source: torchvision's weight enums. For ``efficientnet_b0``..``efficientnet_b7`` and
``efficientnet_v2_s``, ``_m``, ``_l`` the entry is
``torchvision.models.get_model_weights(name).DEFAULT`` (``IMAGENET1K_V1`` for every variant but B1,
whose default is torchvision's own ``IMAGENET1K_V2``). The enum gives the URL, whose file name ends
in the first hex digits of the file's SHA-256 (torch.hub's convention, checked on download), the
evaluation preprocessing and the 1000 class names. Nothing here is copied from the enums: a
torchvision update that republishes weights is picked up as it is.

Where things go:

* the download: ``<torch.hub.get_dir()>/checkpoints/<file name>``, where ``torch.hub`` (and so
  torchvision) keeps it, written by :func:`torch.hub.download_url_to_file` to a temporary name and
  renamed only after its SHA-256 prefix matched, so a broken transfer leaves nothing behind;
* the converted weights: ``<torch.hub.get_dir()>/effnet/<model>-<sha256 prefix>.safetensors``,
  effnet's own format (architecture, preprocessing and numerics in the metadata), written
  atomically; later loads read only this file, without unpickling anything.

Settings:

* ``TORCH_HOME``: torch's own variable; the cache is ``$TORCH_HOME/hub`` (default
  ``~/.cache/torch/hub``). Functions here also take ``cache_dir`` (used instead of the hub dir).
* ``EFFNET_WEIGHTS_URL``: a base URL (a mirror, or a server on loopback in tests) that replaces
  everything before the file name of each published URL. The file names, and so the checksums, stay.

Offline, the error is one line naming the URL and how to use a copy of the file instead
(``pretrained=PATH``, ``--pretrained PATH``, or placing it in the ``checkpoints`` folder).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..errors import EffnetError
from ..fsutil import atomic_path
from .io import FORMAT, FORMAT_VERSION
from .meta import Preprocessing

#: The environment variable naming a mirror of the published weight files.
URL_ENV = "EFFNET_WEIGHTS_URL"
#: Names with published weights on the hub (see the module docstring for the source).
HUB_MODELS = tuple(f"efficientnet_b{i}" for i in range(8)) + tuple(f"efficientnet_v2_{k}" for k in "sml")
#: torch.hub's convention: ``name-<hex>.ext`` carries the first hex digits of the file's SHA-256.
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,64})\.")


class DownloadError(EffnetError):
    """A weight file could not be fetched, or what arrived is not the published file."""


@dataclass(frozen=True)
class HubWeights:
    """One published weight file: where it is, its checksum, and how its model sees images."""

    name: str  # effnet model name the weights are for
    url: str
    sha256: str | None  # a prefix of the file's hex SHA-256; None: not checked
    preprocessing: Preprocessing | None = None  # None: the model's defaults

    @property
    def filename(self) -> str:
        return unquote(Path(urlsplit(self.url).path).name)


def sha256_from_filename(filename: str) -> str | None:
    """The SHA-256 prefix a file name carries by torch.hub's convention (``x-7f5810bc.pth``), if any."""
    m = _HASH_IN_NAME.search(filename)
    return m.group(1) if m else None


def hub_weights(name: str) -> HubWeights:
    """The published ImageNet weights of ``name`` (one of :data:`HUB_MODELS`), from torchvision's enum."""
    if name not in HUB_MODELS:
        raise ValueError(f"no published weights for {name!r} on the hub; known: {', '.join(HUB_MODELS)}")
    from torchvision.models import get_model_weights
    from torchvision.transforms import InterpolationMode

    weights = get_model_weights(name).DEFAULT
    tf = dict(getattr(weights.transforms, "keywords", {}))
    crop = tf.get("crop_size")
    resize = tf.get("resize_size")
    crop = int(crop[0] if isinstance(crop, (list, tuple)) else crop)
    resize = int(resize[0] if isinstance(resize, (list, tuple)) else resize)
    interp = tf.get("interpolation", InterpolationMode.BILINEAR)
    prep = Preprocessing(resolution=crop, crop_fraction=min(1.0, crop / resize),
                         interpolation=InterpolationMode(interp).value,
                         mean=tuple(tf.get("mean", (0.485, 0.456, 0.406))), std=tuple(tf.get("std", (0.229, 0.224, 0.225))),
                         class_names=tuple(weights.meta["categories"]))
    url = weights.url
    return HubWeights(name=name, url=url, sha256=sha256_from_filename(Path(urlsplit(url).path).name),
                      preprocessing=prep)


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir``, or torch.hub's folder (``$TORCH_HOME/hub``, default ``~/.cache/torch/hub``)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    import torch.hub

    return Path(torch.hub.get_dir())


def source_url(entry: HubWeights, base_url: str | None = None) -> str:
    """The URL to fetch: the published one, or ``base_url`` (default ``$EFFNET_WEIGHTS_URL``) + file name."""
    base = base_url if base_url is not None else os.environ.get(URL_ENV, "")
    if not base:
        return entry.url
    return base.rstrip("/") + "/" + entry.filename


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _offline_hint(entry: HubWeights, url: str, dest: Path) -> str:
    return (f"without network, fetch that file elsewhere and pass its path as pretrained=PATH "
            f"(command line: --pretrained PATH), or copy it to {dest}")


def fetch(entry: HubWeights, cache_dir: str | Path | None = None, base_url: str | None = None,
          progress: bool = False) -> Path:
    """The verified local copy of ``entry``'s file, downloaded into ``<cache>/checkpoints/`` if missing.

    A copy already in the cache is checked against ``entry.sha256`` too; a copy that fails is
    replaced by a fresh download. Raises :class:`DownloadError` (one line) when the server cannot be
    reached or the file that arrived fails its checksum; nothing is left in the cache then.
    """
    import torch.hub

    url = source_url(entry, base_url)
    dest = cache_root(cache_dir) / "checkpoints" / entry.filename
    if dest.is_file():
        if entry.sha256 is None or _file_sha256(dest).startswith(entry.sha256):
            return dest
        dest.unlink()  # a stale or damaged copy: fetch the published file again
    dest.parent.mkdir(parents=True, exist_ok=True)
    what = f"the {entry.name} weights" if entry.name else "the weights"
    try:
        torch.hub.download_url_to_file(url, str(dest), hash_prefix=entry.sha256, progress=progress)
    except RuntimeError as exc:
        if "invalid hash value" not in str(exc):
            raise
        got = re.search(r'got "([0-9a-f]+)"', str(exc))
        raise DownloadError(
            f"{what} downloaded from {url} fail their SHA-256 check (expected {entry.sha256}..., got "
            f"{got.group(1)[:len(entry.sha256 or '') or 12] if got else '?'}...): the transfer was cut short or the "
            f"server sent another file; nothing was kept in {dest.parent}, run again to retry") from None
    except OSError as exc:  # URLError, HTTPError, connection resets, timeouts
        reason = getattr(exc, "reason", None) or exc.strerror or exc
        raise DownloadError(f"cannot download {what} from {url} ({reason}); {_offline_hint(entry, url, dest)}") from None
    return dest


def converted_path(entry: HubWeights, cache_dir: str | Path | None = None) -> Path:
    """Where the converted (effnet safetensors) copy of ``entry`` is cached."""
    tag = entry.sha256 or hashlib.sha256(entry.url.encode()).hexdigest()[:12]
    return cache_root(cache_dir) / "effnet" / f"{entry.name}-{tag}.safetensors"


def write_converted(path: Path, loaded, source_url_: str) -> Path:
    """Write ``loaded`` (an :class:`effnet.weights.pretrained.Loaded`) in effnet's format, atomically.

    The metadata is what :func:`effnet.weights.save_model` writes for a built model (architecture,
    preprocessing, numerics), plus the URL the weights came from; written here from the converted
    state dict so that no model has to be built just to save it.
    """
    from safetensors.torch import save_file

    numerics = {"padding": loaded.padding or "symmetric", "bn_eps": loaded.bn_eps,
                "bn_momentum": loaded.bn_momentum, "in_chans": 3}
    metadata = {"format": FORMAT, "version": json.dumps(FORMAT_VERSION), "architecture": loaded.desc.to_json(indent=None),
                "preprocessing": json.dumps(loaded.preprocessing.to_dict()), "numerics": json.dumps(numerics),
                "features_only": "false", "source": source_url_}
    tensors = {k: v.detach().contiguous().clone() for k, v in loaded.state_dict.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def url_weights(url: str, name: str) -> HubWeights:
    """An entry for any URL: the SHA-256 prefix, if any, from its file name (torch.hub's convention)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.path.strip("/"):
        raise ValueError(f"not a weights URL: {url!r} (expected http(s)://HOST/PATH/FILE)")
    return HubWeights(name=name, url=url, sha256=sha256_from_filename(unquote(Path(parts.path).name)))


def is_url(text: object) -> bool:
    return isinstance(text, str) and text.lower().startswith(("http://", "https://"))
