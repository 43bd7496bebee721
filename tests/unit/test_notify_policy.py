"""When a run is e-mailed: the notify policies and their per-job configuration."""

from __future__ import annotations

import pytest

from core.config import NotifySettings
from core.errors import ConfigError
from core.notify import job_policy, should_notify
from core.settings import load_settings

STATUSES = ["SUCCESS", "PARTIAL", "FAILED", "QUOTA_EXCEEDED", "RATE_LIMITED", "SKIPPED"]


@pytest.mark.parametrize(("policy", "mailed"), [
    ("always", set(STATUSES)),
    ("problems", {"PARTIAL", "FAILED", "QUOTA_EXCEEDED"}),
    ("failure", {"FAILED"}),
    ("never", set()),
])
def test_which_statuses_each_policy_mails(policy, mailed):
    assert {s for s in STATUSES if should_notify(policy, s)} == mailed


def test_per_job_setting_beats_the_jobs_own_policy_which_beats_the_default():
    cfg = NotifySettings(jobs={"price_collection": "never"})
    assert cfg.policy == "problems"
    assert job_policy("price_collection", "always", cfg) == "never"
    assert job_policy("profile_fetcher", "always", cfg) == "always"
    assert job_policy("ban_checker", None, cfg) == "problems"


def test_job_policies_from_the_environment_and_bad_values_named(monkeypatch):
    monkeypatch.setenv("NOTIFY_JOBS", "price_collection=never, ban_checker=always")
    monkeypatch.setenv("NOTIFY_POLICY", "failure")
    cfg = load_settings().notify
    assert (cfg.jobs, cfg.policy) == ({"price_collection": "never", "ban_checker": "always"}, "failure")
    monkeypatch.setenv("NOTIFY_JOBS", "price_collection=sometimes")
    with pytest.raises(ConfigError, match=r"notify\.jobs \(env NOTIFY_JOBS\).*price_collection: 'sometimes' "
                                          r"is not a notify policy"):
        load_settings()
    monkeypatch.setenv("NOTIFY_JOBS", "price_collection")
    with pytest.raises(ConfigError, match="expected job_name=policy"):
        load_settings()


def test_a_crashed_run_is_a_problem_and_a_failure():
    """Issue 22 item 5: a run whose process died is e-mailed under problems and failure."""
    assert should_notify("problems", "CRASHED") and should_notify("failure", "CRASHED")
    assert not should_notify("never", "CRASHED") and not should_notify("failure", "PARTIAL")
