from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from pydantic import BaseModel

from amz2erp.config import Settings, find_config, load_settings
from amz2erp.errors import ConfigError
from tests.conftest import MINIMAL_CONFIG, REPO, amz2erp_cmd, write_config

SENTINELS = {
    "refresh_token": "SENTINEL-REFRESH-7f3a9c",
    "client_secret": "SENTINEL-CLIENT-b81e44",
    "api_secret": "SENTINEL-APISECRET-55d0aa",
}


def _config(tmp_path: Path, **overrides: str) -> Path:
    values = dict(SENTINELS, erp_url="http://127.0.0.1:9", state_path=str(tmp_path / "state.db"))
    values.update(overrides)
    return write_config(tmp_path / "c.toml", MINIMAL_CONFIG.format(**values))


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([*amz2erp_cmd(), *args], capture_output=True, text=True, env=full_env, timeout=60)


def test_example_config_is_the_packaged_template_and_valid() -> None:
    example = (REPO / "config.example.toml").read_text()
    template = (REPO / "amz2erp" / "templates" / "config.toml").read_text()
    assert example == template
    import tomllib

    from amz2erp.config import parse_settings

    settings = parse_settings(tomllib.loads(example), source=Path("config.example.toml"))
    assert settings.amazon.marketplaces == ["US", "CA"]
    assert settings.orders.submit is True


def test_loads_and_env_secrets_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _config(tmp_path)
    monkeypatch.setenv("AMZ2ERP_ERPNEXT_API_SECRET", "from-env-secret")
    settings, used = load_settings(path)
    assert used == path.resolve()
    assert settings.erpnext.api_secret.get_secret_value() == "from-env-secret"
    assert settings.amazon.refresh_token.get_secret_value() == SENTINELS["refresh_token"]
    # repr never shows secret values
    assert SENTINELS["refresh_token"] not in repr(settings)


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="no config file found"):
        find_config(None)
    user = Path(monkeypatch_env(monkeypatch, tmp_path)) / "amz2erp" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text("x")
    assert find_config(None) == user
    local = tmp_path / "amz2erp.toml"
    local.write_text("x")
    assert find_config(None) == Path("amz2erp.toml")
    env_file = tmp_path / "env.toml"
    env_file.write_text("x")
    monkeypatch.setenv("AMZ2ERP_CONFIG", str(env_file))
    assert find_config(None) == env_file
    explicit = tmp_path / "explicit.toml"
    explicit.write_text("x")
    assert find_config(explicit) == explicit


def monkeypatch_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    cfg_home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(cfg_home))
    return str(cfg_home)


def test_malformed_toml_exit_2_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[amazon]\nrefresh_token = "SENTINEL-REFRESH-7f3a9c"\nregion = \n')
    result = _run("--config", str(path), "status")
    assert result.returncode == 2
    assert str(path) in result.stderr
    assert "line 3" in result.stderr
    assert "Traceback" not in result.stderr
    assert SENTINELS["refresh_token"] not in result.stderr + result.stdout


def test_missing_required_key_exit_2_names_key(tmp_path: Path) -> None:
    path = _config(tmp_path)
    path.write_text(path.read_text().replace('lwa_app_id = "app-id"\n', ""))
    result = _run("--config", str(path), "status")
    assert result.returncode == 2
    assert "[amazon] lwa_app_id: required key is missing" in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    path = _config(tmp_path)
    path.write_text(path.read_text().replace("[defaults]\n", "[defaults]\nwarehose = \"typo\"\n"))
    result = _run("--config", str(path), "status")
    assert result.returncode == 2
    assert "[defaults] warehose: unknown key" in result.stderr


def test_bad_value_never_echoes_secret(tmp_path: Path) -> None:
    path = _config(tmp_path, erp_url="ftp://SENTINEL-APISECRET-55d0aa")
    result = _run("--config", str(path), "status")
    assert result.returncode == 2
    assert "[erpnext] url" in result.stderr
    assert "SENTINEL" not in result.stderr + result.stdout


def test_warns_when_config_with_secrets_is_group_readable(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _config(tmp_path)
    path.chmod(0o644)
    with caplog.at_level("WARNING"):
        load_settings(path)
    assert "readable by group or others" in caplog.text
    assert "chmod 600" in caplog.text


def test_unknown_marketplace_rejected(tmp_path: Path) -> None:
    path = _config(tmp_path)
    path.write_text(path.read_text().replace('marketplaces = ["US"]', 'marketplaces = ["US", "XX"]'))
    with pytest.raises(ConfigError, match=r"\[amazon\] marketplaces: .*unknown marketplace 'XX'"):
        load_settings(path)


def test_retired_seller_id_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = _config(tmp_path)
    path.write_text(path.read_text().replace('marketplaces = ["US"]', 'marketplaces = ["US"]\nseller_id = "A1X"'))
    result = _run("--config", str(path), "status")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "[amazon] seller_id is no longer accepted" in result.stderr
    assert "delete the line" in result.stderr


def _template_keys() -> dict[tuple[str, str], str]:
    """(section, key) → the value text of every key the template shows, set or commented out."""
    keys: dict[tuple[str, str], str] = {}
    section = ""
    for line in (REPO / "amz2erp" / "templates" / "config.toml").read_text().splitlines():
        if m := re.match(r"^#?\s*\[([\w.]+)\]", line):
            section = m.group(1)
        elif (m := re.match(r'^#?\s*("[^"]+"|\w+)\s*=\s*(.*?)\s*(?:#.*)?$', line)) and section:
            keys[(section, m.group(1))] = m.group(2)
    return keys


def test_template_shows_every_setting_with_its_default() -> None:
    import tomllib

    shown = _template_keys()
    tables = {section for section, _ in shown}
    missing, wrong = [], []
    for section, field in Settings.model_fields.items():
        model = field.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        for key, spec in model.model_fields.items():
            if spec.annotation is not None and getattr(spec.annotation, "__origin__", None) is dict:
                if f"{section}.{key}" not in tables:  # a table of its own: [items.map], [orders.exchange_rates]
                    missing.append(f"[{section}.{key}]")
                continue
            if (section, key) not in shown:
                missing.append(f"[{section}] {key}")
                continue
            default = spec.get_default(call_default_factory=True)
            if (section, key) in _EXAMPLE_VALUES or not isinstance(default, (bool, int, float, str)):
                continue
            value = tomllib.loads(f"v = {shown[(section, key)]}")["v"]
            if value != default:
                wrong.append(f"[{section}] {key}: template shows {value!r}, the default is {default!r}")
    assert missing == [] and wrong == []


# keys the template sets to an example value to be replaced, not to the default
_EXAMPLE_VALUES = {("amazon", "refresh_token"), ("amazon", "lwa_app_id"), ("amazon", "lwa_client_secret"),
                   ("amazon", "marketplaces"), ("erpnext", "url"), ("erpnext", "api_key"),
                   ("erpnext", "api_secret"), ("defaults", "company"), ("defaults", "warehouse"),
                   ("defaults", "fba_warehouse"), ("sync", "after")}


def test_deliver_needs_invoice_mode() -> None:
    import tomllib

    base = tomllib.loads((REPO / "amz2erp" / "templates" / "config.toml").read_text())
    base["orders"]["deliver"] = "delivery_note"
    with pytest.raises(ValueError, match='needs \\[settlements\\] mode = "invoice"'):
        Settings.model_validate(base)
    base["settlements"]["mode"] = "invoice"
    assert Settings.model_validate(base).orders.deliver == "delivery_note"
