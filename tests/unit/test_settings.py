"""Settings: YAML + environment, and errors that name the key."""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from core.settings import load_settings


def test_defaults_match_the_seed(monkeypatch, tmp_path):
    monkeypatch.setenv("CONFIG_FILE", str(tmp_path / "empty.yml"))
    (tmp_path / "empty.yml").write_text("{}\n")
    s = load_settings()
    assert s.cron.batch_size == 10
    assert (s.rapidapi.rate_limit_max_retries, s.rapidapi.rate_limit_backoff_ms,
            s.rapidapi.rate_limit_backoff_max_ms) == (3, 1000, 8000)
    assert s.database_url.startswith("sqlite:///") and s.storage_url.startswith("file://")


def test_yaml_then_environment_overrides(monkeypatch, tmp_path):
    cfg = tmp_path / "c.yml"
    cfg.write_text("cron:\n  batchSize: 25\nrapidapi:\n  monthlyQuota: 42\n")
    monkeypatch.setenv("CONFIG_FILE", str(cfg))
    monkeypatch.setenv("RAPIDAPI_MONTHLY_QUOTA", "7")
    s = load_settings()
    assert s.cron.batch_size == 25 and s.rapidapi.monthly_quota == 7


@pytest.mark.parametrize(
    ("yaml_text", "env", "fragment"),
    [
        ("cron:\n  batchsize: 5\n", {}, "cron.batchsize: unknown configuration key"),
        ("rapidapi:\n  rateLimitBackoffMs: -1\n", {}, "rapidapi.rateLimitBackoffMs"),
        ("", {"CRON_BATCH_SIZE": "ten"}, "cron.batchSize (env CRON_BATCH_SIZE)"),
        ("", {"CRON_PROFILE_FETCHER_SCHEDULE": "0 0 0 * * *"}, "not a 5-field cron expression"),
        ("", {"CRON_PROFILE_FETCHER_SCHEDULE": "61 * * * *"}, "not a valid cron expression"),
        ("", {"CRON_TIMEZONE": "Mars/Olympus"}, "unknown timezone"),
        ("", {"STORAGE_URL": "ftp://x"}, "storage.url (env STORAGE_URL)"),
        ("", {"RAPIDAPI_BASE_URL": "not a url"}, "rapidapi.baseUrl"),
        ("", {"NOTIFY_EMAIL_TO": "nobody"}, "notify.emailTo"),
        ("bogus: 1\n", {}, "bogus: unknown configuration key"),
    ],
)
def test_bad_values_name_the_key(monkeypatch, tmp_path, yaml_text, env, fragment):
    cfg = tmp_path / "c.yml"
    cfg.write_text(yaml_text)
    monkeypatch.setenv("CONFIG_FILE", str(cfg))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert fragment in str(info.value)


def test_secrets_are_never_echoed(monkeypatch, tmp_path):
    (tmp_path / "c.yml").write_text("{}\n")
    monkeypatch.setenv("CONFIG_FILE", str(tmp_path / "c.yml"))
    monkeypatch.setenv("RAPIDAPI_KEY", "super-secret-key")
    s = load_settings()
    assert "super-secret-key" not in repr(s) and "super-secret-key" not in str(s.model_dump())
    monkeypatch.setenv("CRON_BATCH_SIZE", "x")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "super-secret-key" not in str(info.value)


def test_environment_names_are_generated_beside_each_field(monkeypatch, tmp_path):
    from core.settings import ENV_KEYS

    monkeypatch.setenv("CONFIG_FILE", str(tmp_path / "empty.yml"))
    (tmp_path / "empty.yml").write_text("{}\n")
    # generated: prefix + field name; declared: where the seeds spell it otherwise
    assert ENV_KEYS["CRON_FETCHING_TIMEOUT_MINUTES"] == "cron.fetchingTimeoutMinutes"
    assert ENV_KEYS["SMTP_STARTTLS"] == "smtp.startTls" and "SMTP_START_TLS" not in ENV_KEYS
    assert ENV_KEYS["TOP_COINS_COLLECTION_LIMIT"] == "cryptoJobs.topCoinsCollection.limit"
    assert "JOBS_CONCURRENCY" not in ENV_KEYS  # a mapping: YAML only
    monkeypatch.setenv("CRON_FETCHING_TIMEOUT_MINUTES", "45")
    monkeypatch.setenv("OPENAI_MODEL", "gpt-x")
    s = load_settings()
    assert s.cron.fetching_timeout_minutes == 45 and s.collectors.openai_model == "gpt-x"
    monkeypatch.setenv("RIOT_TIMEOUT_SECONDS", "soon")
    with pytest.raises(ConfigError, match=r"riot\.timeoutSeconds \(env RIOT_TIMEOUT_SECONDS\)"):
        load_settings()
