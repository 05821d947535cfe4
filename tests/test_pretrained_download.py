"""Published weights through torch.hub's download and cache, end to end against a real HTTP server on loopback.

The cache is put in a temporary folder with ``TORCH_HOME`` (torch's own setting) and the published
URLs are redirected to the loopback server with ``EFFNET_WEIGHTS_URL`` (effnet's documented mirror
setting), so nothing here reaches the network.
"""
from __future__ import annotations

import hashlib
import http.server
import io
import socket
import threading
from pathlib import Path

import pytest
import torch

import effnet
import effnet.cli as cli
from effnet.weights.hub import HUB_MODELS, URL_ENV, DownloadError, hub_weights


class Server:
    """A threaded HTTP server on 127.0.0.1 serving ``files``: path -> bytes, or (bytes, "truncate")."""

    def __init__(self) -> None:
        self.files: dict[str, object] = {}
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                outer.requests.append(self.path)
                entry = outer.files.get(self.path)
                if entry is None:
                    self.send_error(404, "File not found")
                    return
                data, mode = entry if isinstance(entry, tuple) else (entry, "whole")
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if mode == "truncate":  # the connection drops half way through the body
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.delenv(URL_ENV, raising=False)
    return home


def _files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def torchvision_b0_bytes():
    """A torchvision B0 (random weights, eval mode) and its state dict as ``torch.save`` writes it."""
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.efficientnet_b0().eval()
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return model, buf.getvalue()


def test_weights_from_a_url_are_verified_converted_cached_and_then_used_offline(server, torch_home,
                                                                                 torchvision_b0_bytes):
    reference, data = torchvision_b0_bytes
    sha = hashlib.sha256(data).hexdigest()
    server.files[f"/models/b0-{sha[:8]}.pth"] = data
    url = f"{server.base}/models/b0-{sha[:8]}.pth"

    model = effnet.create_model("efficientnet_b0", pretrained=url).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = reference(x)
        assert (model(x) - expected).abs().max().item() <= 1e-4
    hub = torch_home / "hub"
    assert _files_under(hub) == [f"checkpoints/b0-{sha[:8]}.pth", f"effnet/efficientnet_b0-{sha[:8]}.safetensors"]
    assert len(model.preprocessing.class_names) == 1000  # a torchvision 1000-class head: ImageNet's names

    server.close()  # offline from now on: the converted copy in the cache is enough
    again = effnet.create_model("efficientnet_b0", pretrained=url).eval()
    with torch.no_grad():
        assert torch.equal(again(x), model(x))
    assert server.requests == [f"/models/b0-{sha[:8]}.pth"]
    assert (again.padding, again.stem.bn.eps) == ("symmetric", 1e-5)  # torchvision's numerics travel with it


def test_published_file_with_the_wrong_checksum_is_refused_and_not_kept(server, torch_home, monkeypatch):
    entry = hub_weights("efficientnet_b0")
    server.files[f"/mirror/{entry.filename}"] = b"not the published weights" * 100
    monkeypatch.setenv(URL_ENV, f"{server.base}/mirror/")
    with pytest.raises(DownloadError) as err:
        effnet.create_model("efficientnet_b0", pretrained=True)
    msg = str(err.value)
    assert "\n" not in msg and "SHA-256" in msg and f"{server.base}/mirror/{entry.filename}" in msg
    assert entry.sha256 in msg
    assert _files_under(torch_home) == []  # no partial or corrupt file left in the cache


def test_truncated_download_is_refused_and_not_kept(server, torch_home):
    data = bytes(range(256)) * 64
    sha = hashlib.sha256(data).hexdigest()
    server.files[f"/w/tiny-{sha[:10]}.pth"] = (data, "truncate")
    with pytest.raises(DownloadError, match="SHA-256 check .*cut short") as err:
        effnet.create_model("efficientnet_b0", pretrained=f"{server.base}/w/tiny-{sha[:10]}.pth")
    assert "\n" not in str(err.value)
    assert _files_under(torch_home) == []


def test_unreadable_download_without_a_checksum_is_removed(server, torch_home):
    server.files["/w/plain.pth"] = b"PK\x03\x04 half a zip file"
    with pytest.raises(ValueError, match="cannot be read and were removed from the cache"):
        effnet.create_model("efficientnet_b0", pretrained=f"{server.base}/w/plain.pth")
    assert _files_under(torch_home) == []


def test_offline_gives_one_line_naming_the_url_and_the_local_file_alternative(torch_home, monkeypatch, capsys,
                                                                              tmp_path):
    base = f"http://127.0.0.1:{_closed_port()}/models"
    monkeypatch.setenv(URL_ENV, base)
    entry = hub_weights("efficientnet_b3")
    with pytest.raises(DownloadError) as err:
        effnet.create_model("efficientnet_b3", pretrained=True)
    msg = str(err.value)
    assert "\n" not in msg and f"{base}/{entry.filename}" in msg and "pretrained=PATH" in msg
    assert "--pretrained PATH" in msg and str(torch_home / "hub" / "checkpoints") in msg
    assert _files_under(torch_home) == []

    photo = tmp_path / "x.png"
    from PIL import Image

    Image.new("RGB", (32, 32), (90, 120, 30)).save(photo)
    monkeypatch.setattr(cli, "COMMANDS", ["predict"])
    assert cli.main(["predict", str(photo), "--model", "efficientnet_b3", "--pretrained"]) == 2
    err_text = capsys.readouterr().err
    assert err_text.startswith("effnet predict: error: cannot download the efficientnet_b3 weights from ")
    assert err_text.count("\n") == 1


def test_a_damaged_copy_in_the_cache_is_fetched_again(server, torch_home, torchvision_b0_bytes):
    _, data = torchvision_b0_bytes
    sha = hashlib.sha256(data).hexdigest()
    name = f"b0-{sha[:8]}.pth"
    server.files[f"/models/{name}"] = data
    stale = torch_home / "hub" / "checkpoints" / name
    stale.parent.mkdir(parents=True)
    stale.write_bytes(data[:1000])
    effnet.create_model("efficientnet_b0", pretrained=f"{server.base}/models/{name}")
    assert stale.read_bytes() == data and server.requests == [f"/models/{name}"]


def test_every_b_variant_names_torchvisions_published_file_and_checksum():
    for name in HUB_MODELS:
        entry = hub_weights(name)
        assert entry.url.startswith(f"https://download.pytorch.org/models/{name}")
        assert entry.sha256 and entry.filename.endswith(f"-{entry.sha256}.pth")
        assert len(entry.preprocessing.class_names) == 1000
    assert hub_weights("efficientnet_b0").preprocessing.resolution == 224
    assert hub_weights("efficientnet_b7").preprocessing.resolution == 600


def test_pretrained_true_for_a_model_without_weights_names_those_with_them():
    with pytest.raises(ValueError, match="efficientnet_lite2.*efficientnet_b7.*pretrained=PATH"):
        effnet.create_model("efficientnet_b8", pretrained=True)
