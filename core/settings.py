"""All settings: ``config/config.yml`` plus environment overrides, validated up front.

The root :class:`Settings` only composes the sections that each family declares beside its
code (``core/<family>/settings.py``) and the kernel's own (``core.config``). Precedence:
keyword arguments > environment variables > the YAML file > defaults. Every error names
the key that was wrong (``rapidapi.rateLimitBackoffMs``) and its environment variable.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from core.brands.settings import BrandJobsSettings, CollectorsSettings
from core.config import (
    DEFAULT_CONFIG_FILE,
    PROJECT_ROOT,
    AlertsSettings,
    DatabaseSettings,
    NotifySettings,
    SmtpSettings,
    StorageSettings,
    env_names,
)
from core.crypto.settings import CoinGeckoSettings, CryptoJobsSettings
from core.errors import ConfigError
from core.jobqueue.settings import JobsWorkerSettings
from core.profiles.settings import CronSettings, RapidApiSettings
from core.riot.settings import RiotSettings


class Settings(BaseSettings):
    """All settings of the product; build with :func:`load_settings`."""

    model_config = SettingsConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    data_dir: Path = Field(PROJECT_ROOT / ".data", alias="dataDir")
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)
    cron: CronSettings = Field(default_factory=CronSettings)
    rapidapi: RapidApiSettings = Field(default_factory=RapidApiSettings)
    riot: RiotSettings = Field(default_factory=RiotSettings)
    coingecko: CoinGeckoSettings = Field(default_factory=CoinGeckoSettings)
    crypto_jobs: CryptoJobsSettings = Field(
        default_factory=lambda: CryptoJobsSettings.model_validate({}), alias="cryptoJobs")
    collectors: CollectorsSettings = Field(default_factory=CollectorsSettings)
    brand_jobs: BrandJobsSettings = Field(default_factory=BrandJobsSettings, alias="brandJobs")
    jobs_worker: JobsWorkerSettings = Field(default_factory=JobsWorkerSettings, alias="jobsWorker")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        *args: Any,
        **kwargs: Any,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _EnvSource(settings_cls), _YamlSource(settings_cls)

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.data_dir / 'jobpipes.db'}"

    @property
    def storage_url(self) -> str:
        return self.storage.url or (self.data_dir / "objects").as_uri()

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"


# Environment variable -> dotted config key, generated from the sections' fields.
ENV_KEYS: dict[str, str] = env_names(Settings)
_log = logging.getLogger("jobpipes.settings")
_KEY_TO_ENV = {key: name for name, key in ENV_KEYS.items()}
# The prefixes of our variables (a section's, like CRON_; DATA_DIR's own is too generic) and
# variables with such a prefix that other parts read on purpose.
_PREFIXES = tuple(sorted({n.split("_", 1)[0] + "_" for n in ENV_KEYS if "_" in n} - {"DATA_"}))
_NOT_SETTINGS = {"JOBPIPES_JOB_MODULES", "BRAND_ADMIN_TOKEN_FILE"}


class _EnvSource(PydanticBaseSettingsSource):
    """Reads exactly the variables in ENV_KEYS and nests them under their config keys."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        tree: dict[str, Any] = {}
        for name, dotted in ENV_KEYS.items():
            if name in os.environ:
                _set_dotted(tree, dotted, os.environ[name])
        return tree


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the YAML file named by ``CONFIG_FILE`` (default ``config/config.yml``)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = Path(os.environ.get("CONFIG_FILE") or DEFAULT_CONFIG_FILE)
        if not path.exists():
            if "CONFIG_FILE" in os.environ:
                raise ConfigError(f"CONFIG_FILE: {path} does not exist")
            return {}
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
        return data


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[leaf] = value


def _describe(error: Any) -> str:
    path = ".".join(str(p) for p in error["loc"])
    camel = _camel_path(error["loc"])
    name = _KEY_TO_ENV.get(camel)
    where = f"{camel} (env {name})" if name else camel
    if error["type"] == "extra_forbidden":
        known = _keys_at(tuple(error["loc"][:-1]))
        guess = difflib.get_close_matches(str(error["loc"][-1]), known, n=1, cutoff=0.6)
        hint = f"; did you mean {'.'.join([*camel.split('.')[:-1], guess[0]])}?" if guess else ""
        return f"{where}: unknown configuration key{hint}"
    value = error.get("input")
    secret = "key" in path or "password" in path or "token" in path or path == "database.url"  # user:password@
    shown = "" if secret else f" (got {value!r})"
    return f"{where}: {error['msg']}{shown}"


def _keys_at(loc: tuple[Any, ...]) -> list[str]:
    """The configuration keys (as the YAML spells them) of the section at ``loc``."""
    model: Any = Settings
    for part in loc:
        info = model.model_fields.get(str(part)) or next(
            (f for f in model.model_fields.values() if f.alias == str(part)), None)
        if info is None or not (isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)):
            return []
        model = info.annotation
    return [f.alias or name for name, f in model.model_fields.items()]


def unknown_environment(environ: Mapping[str, str]) -> list[str]:
    """A line for each variable that starts like one of ours (``CRON_``, ``RAPIDAPI_``, ...) but
    is none of ENV_KEYS, with the closest key: a typo there is otherwise silently ignored."""
    found = []
    for name in sorted(environ):
        if name in ENV_KEYS or name in _NOT_SETTINGS or not name.startswith(_PREFIXES):
            continue
        guess = difflib.get_close_matches(name, ENV_KEYS, n=1, cutoff=0.6)
        found.append(f"{name}: not a setting, ignored" + (f"; did you mean {guess[0]}?" if guess else ""))
    return found


def _camel_path(loc: tuple[Any, ...]) -> str:
    parts = []
    for part in loc:
        head, *rest = str(part).split("_")
        parts.append(head + "".join(w.capitalize() for w in rest))
    return ".".join(parts)


def load_settings(**overrides: Any) -> Settings:
    """Build settings from YAML + environment + ``overrides``; raise ConfigError naming bad keys."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = [_describe(e) for e in exc.errors()]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, loaded once; a mistyped variable of ours is a warning then."""
    for line in unknown_environment(os.environ):
        _log.warning("%s", line)
    return load_settings()


def file_defaults(config_file: Path = DEFAULT_CONFIG_FILE) -> Settings:
    """The settings of ``config_file`` alone, without the environment: the defaults that
    ``prefect.yaml`` carries. Not for a process whose other threads read the environment."""
    names = [*ENV_KEYS, "CONFIG_FILE"]
    saved = {name: os.environ.pop(name) for name in names if name in os.environ}
    os.environ["CONFIG_FILE"] = str(config_file)
    try:
        return load_settings()
    finally:
        os.environ.pop("CONFIG_FILE", None)
        os.environ.update(saved)
