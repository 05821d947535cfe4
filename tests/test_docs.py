"""Every number in docs/ and the README comes from a JSON result in the repository (scripts/render_docs.py)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("render_docs", ROOT / "scripts" / "render_docs.py")
render_docs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(render_docs)


def test_every_document_equals_its_template_rendered_from_its_json(capsys):
    code = render_docs.main(["--check"])
    assert code == 0, capsys.readouterr().err


def test_a_document_that_disagrees_with_its_json_is_caught(tmp_path, monkeypatch):
    (tmp_path / "r.json").write_text(json.dumps({"rows": [{"key": "a", "mean": 0.71234}], "n": 3}))
    monkeypatch.setattr(render_docs, "SEARCH", (tmp_path,))
    t = tmp_path / "doc.md"
    t.write_text("# Measured\n\nAccuracy {{r:rows.[key=a].mean|.3f}} over {{r:n}} seeds.\n")
    assert render_docs.render(t) == "# Measured\n\nAccuracy 0.712 over 3 seeds.\n"
    (tmp_path / "r.json").write_text(json.dumps({"rows": [{"key": "a", "mean": 0.69}], "n": 3}))
    assert "0.690" in render_docs.render(t)


def test_a_number_typed_by_hand_in_a_measured_section_is_refused(tmp_path):
    t = tmp_path / "doc.md"
    t.write_text("# Reference\n\nw = -0.07 is the paper's.\n\n## Measured\n\nWidth gains 4.2 points "
                 "(Figure 3, 95% CI from {{r:lo}}); `--seeds 3`.\n")
    found = render_docs.hand_typed_numbers(t)
    assert len(found) == 1 and "'4.2'" in found[0]


def test_a_missing_value_is_an_error_not_an_empty_string(tmp_path, monkeypatch):
    (tmp_path / "r.json").write_text(json.dumps({"a": None}))
    monkeypatch.setattr(render_docs, "SEARCH", (tmp_path,))
    t = tmp_path / "doc.md"
    for body, match in (("{{r:a}}", "missing"), ("{{r:b}}", "no 'b'"), ("{{nofile:a}}", "no nofile.json")):
        t.write_text(body + "\n")
        with pytest.raises(render_docs.RenderError, match=match):
            render_docs.render(t)
