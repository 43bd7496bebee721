"""What the docs name exists and says what the code does (issue 22 item 10, item 9's description)."""

from __future__ import annotations

import importlib.util
import re
from datetime import datetime

import yaml

from core.config import PROJECT_ROOT
from core.riot.config import SmurfAnalyzerConfig
from deployments.control.registry import BY_ID

PREFECT_YAML = (PROJECT_ROOT / "prefect.yaml").read_text()
README = (PROJECT_ROOT / "README.md").read_text()
MODULE = re.compile(r"(?<![\w.])((?:deployments|flows|tasks|core|prefect_api)(?:\.[a-z_]+)+)\b")


def test_every_module_prefect_yaml_names_exists():
    named = set(MODULE.findall(PREFECT_YAML))
    assert named, "prefect.yaml names no module: the pattern is wrong"
    for dotted in sorted(named):
        # a dotted name may end in an attribute (deployments.api.app:app is split at ':')
        assert _exists(dotted), f"prefect.yaml names {dotted}, which does not exist"


def _exists(dotted: str) -> bool:
    """A module, or an attribute of one (``deployments.api.app``)."""
    try:
        return importlib.util.find_spec(dotted) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def test_the_smurf_analyzer_description_says_it_calls_league_v4_by_default():
    assert SmurfAnalyzerConfig.model_fields["collect_ranks"].default is True
    [smurf] = [d for d in yaml.safe_load(PREFECT_YAML)["deployments"] if d["name"] == "smurf-analyzer"]
    assert "no API calls" not in smurf["description"] and "league-v4" in smurf["description"]
    assert "collect_ranks" in smurf["description"] and BY_ID["smurf-analyzer"].description == smurf["description"]


def test_the_readme_quota_trend_example_is_a_period_the_route_accepts():
    from core.profiles.quota import PERIOD_FORMAT

    [example] = re.findall(r"/api/v1/trends/quota\?period=([^`\s)]+)", README)
    datetime.strptime(example, PERIOD_FORMAT)
    assert "summary dict" not in README  # profile_fetcher returns a JobResult
