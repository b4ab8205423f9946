from pathlib import Path

import pytest
import yaml

from lima.core.config import SCHEMAS, load_config, parse_overrides, schema_for_kind
from lima.core.endpoint import EndpointConfig
from lima.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
# Config folders validated by something other than a lima schema.
FOREIGN_FORMATS = {"accelerate"}


def test_overrides_nest_and_parse_scalars():
    assert parse_overrides(["a.b=3", "a.c=1e-4", "d=true", "e=hello", "f=[1, 2]"]) == {
        "a": {"b": 3, "c": "1e-4"},
        "d": True,
        "e": "hello",
        "f": [1, 2],
    }
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_overrides(["novalue"])


def test_override_wins_over_file(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text("base_url: http://localhost:8000/v1\nconcurrency: 2\n")
    config = load_config(path, EndpointConfig, ["concurrency=9", "timeout_s=3.5"])
    assert (
        config.concurrency == 9 and config.timeout_s == 3.5 and config.base_url == "http://localhost:8000/v1"
    )


def test_every_problem_reported_at_once(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("base_url: http://x/v1\nconcurrancy: 3\nfoo: 1\ntimeout_s: soon\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, EndpointConfig)
    message = str(info.value)
    assert "3 problems" in message
    assert "concurrancy: unknown key (did you mean concurrency?)" in message
    assert "foo: unknown key" in message
    assert "timeout_s: wrong type: expected a number, got 'soon'" in message


def test_invalid_yaml_names_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("a: 1\nb: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken.yaml:\d+:\d+: invalid YAML"):
        load_config(path, EndpointConfig)


def test_cli_reports_all_three_and_exits_2(tmp_path, cli):
    path = tmp_path / "endpoints" / "typo.yaml"
    path.parent.mkdir()
    path.write_text("base_url: http://x/v1\nconcurency: 3\nunknown_thing: 1\nmax_retries: many\n")
    result = cli("validate", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert "concurency: unknown key (did you mean concurrency?)" in result.stderr
    assert "unknown_thing: unknown key" in result.stderr
    assert "max_retries: wrong type: expected an integer, got 'many'" in result.stderr
    ok = cli("validate", str(ROOT / "configs/endpoints/openai.yaml"), "concurrency=2")
    assert ok.returncode == 0, ok.stderr
    assert yaml.safe_load(ok.stdout)["concurrency"] == 2


def _shipped_configs():
    return sorted(p for p in (ROOT / "configs").rglob("*.yaml"))


@pytest.mark.parametrize("path", _shipped_configs(), ids=lambda p: str(p.relative_to(ROOT / "configs")))
def test_every_shipped_config_validates(path):
    kind = path.relative_to(ROOT / "configs").parts[0]
    if kind in FOREIGN_FORMATS:
        assert isinstance(yaml.safe_load(path.read_text()), dict)
        return
    if path.parent.name not in SCHEMAS:
        # data files that configs refer to (e.g. a site→group mapping) live in a 'data' subfolder
        assert path.parent.name == "data", (
            f"{path}: no schema registered for configs/{kind}/ in lima.core.config.SCHEMAS"
        )
        yaml.safe_load(path.read_text())
        return
    config = load_config(path, schema_for_kind(path.parent.name))
    if hasattr(config, "check_stages"):
        config.check_stages(path)
