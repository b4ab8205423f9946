import json

import pytest

from lima.core.manifest import RunManifest, read_manifest, redact


def test_manifest_records_run_and_hides_secrets(tmp_path, monkeypatch):
    secret = "sk-test-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    data = tmp_path / "in.jsonl"
    data.write_text('{"x": 1}\n')
    config = {
        "endpoint": {"api_key": secret, "api_key_env": "OPENAI_API_KEY", "model": "m"},
        "note": f"key={secret}",
    }
    out = tmp_path / "run"
    with RunManifest(out, "test", config, inputs=[data], seed=7) as manifest:
        assert read_manifest(out)["status"] == "running"
        manifest.update(counts={"kept": 1}, log=f"Authorization: Bearer {secret}")
    text = (out / "manifest.json").read_text()
    assert secret not in text
    manifest_data = json.loads(text)
    assert manifest_data["status"] == "ok" and manifest_data["seed"] == 7
    assert manifest_data["config"]["endpoint"]["api_key"] == "***"
    # the variable's name is fine
    assert manifest_data["config"]["endpoint"]["api_key_env"] == "OPENAI_API_KEY"
    assert manifest_data["inputs"][0]["sha256"] and manifest_data["versions"]["torch"]
    assert "commit" in manifest_data["git"] and manifest_data["ended_at"]


def test_failed_run_is_marked(tmp_path):
    with pytest.raises(ValueError), RunManifest(tmp_path, "test", {}):
        raise ValueError("boom")
    manifest = read_manifest(tmp_path)
    assert manifest["status"] == "failed" and "boom" in manifest["error"]


def test_redact_leaves_ordinary_values():
    assert redact({"max_tokens": 5, "tokens": [1, 2], "password": ""}, secrets=["abcdefgh"]) == {
        "max_tokens": 5,
        "tokens": [1, 2],
        "password": "",
    }
