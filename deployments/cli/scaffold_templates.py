"""The files ``jobpipes new-job`` writes, as ``string.Template`` texts (``$name`` placeholders).

Each generated file carries ``MARKER``: ``--force`` overwrites only files that carry it, never
a module of the product's own that happens to have the same name.
"""

from __future__ import annotations

from string import Template

MARKER = "Written by ``jobpipes new-job``"

FLOW = Template('''"""$title ($job_id): $description

Its spec (``JOBS``, below) is its one declaration and ``flows/local_jobs.py`` lists this module:
deploy, serve, prefect.yaml, the operations API and page and ``jobpipes`` read it there.
$marker; make it yours.
"""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field

$imports

DEFAULT_ITEMS: tuple[str, ...] = ("alpha", "beta", "gamma")


class $config_class(BaseModel):
    """The knobs of its ``job_configurations`` row (``uv run jobpipes config $job_id --set ...``)."""

    model_config = ConfigDict(extra="forbid")
    items: list[str] = Field(default_factory=lambda: list(DEFAULT_ITEMS), max_length=10_000)


@flow(name="$job_id")
async def $ident(items: list[str] | None = None) -> JobResult:
    """Count ``items`` (a deployment's runs get its config row's; None: ``DEFAULT_ITEMS``)."""
    chosen = list(DEFAULT_ITEMS) if items is None else items

    async def body(m: JobMetrics) -> None:
        counts = await count_items(chosen)
        m.items_processed, m.items_skipped = counts["processed"], counts["skipped"]
        m.custom = {"kept": counts["kept"], "distinct": counts["distinct"]}

    # A Prefect state named after the JobResult's status (Completed, Partial, ...); callers get the result.
    return final_state(await run_job("$history_name", "$config_key", body, params={"items": chosen}))


JOBS = (
    JobSpec($ident, "$family", $title_literal,
            $description_literal,
            tags=("jobpipes", "$family"), schedule=lambda _settings: DefaultSchedule("$cron", "$timezone"),
            config_table="job_configurations", config_key="$config_key", config_model=$config_class,
            config_defaults=lambda _settings: $config_class().model_dump(),
            parameters_from_config=lambda config: {"items": config["items"]}),
)
''')
FLOW_IMPORTS = ("from core.runs.result import JobMetrics, JobResult", "from flows.spec import DefaultSchedule, JobSpec",
                "from $task_module import count_items", "from tasks.runs import final_state, run_job")

TASK = Template('''"""The work of $title ($job_id), as a task any flow can reuse: it counts items, the
place for the job's real work.

$marker; make it yours.
"""

from __future__ import annotations

from typing import TypedDict

from prefect import task
from prefect.cache_policies import NO_CACHE


class ItemCounts(TypedDict):
    processed: int  # every item given
    kept: int  # the non-blank ones
    skipped: int  # the blank ones
    distinct: int  # the distinct kept ones


@task(cache_policy=NO_CACHE)
async def count_items(items: list[str]) -> ItemCounts:
    """How many ``items`` there are, how many are blank (skipped), and how many distinct."""
    kept = [item.strip() for item in items if item.strip()]
    return {"processed": len(items), "kept": len(kept), "skipped": len(items) - len(kept),
            "distinct": len(set(kept))}
''')

TEST = Template('''"""$job_id on the real services (PostgreSQL, the Prefect harness): a run returns its
JobResult and writes its job_execution_history row; the registry lists it as its spec says.

$marker; make it yours.
"""

from __future__ import annotations

$imports


async def test_a_run_returns_its_job_result_and_records_its_history_row(app_env):
    items = ["alpha", "beta", "alpha", " "]
    result = await $ident(items=items)
    assert result.success and result.status == "SUCCESS" and result.job_name == "$history_name"
    m = result.metrics
    assert (m.items_processed, m.items_skipped, m.custom["kept"], m.custom["distinct"]) == (4, 1, 3, 2)
    [row] = history_rows(app_env["DATABASE_URL"])
    assert (row.job_name, row.job_type, row.status) == ("$history_name", "$config_key", "SUCCESS")
    assert (row.total_processed, row.items_skipped, row.failed_count) == (4, 1, 0)
    assert row.flow_run_id == result.flow_run_id and row.metrics["params"] == {"items": items}


def test_the_registry_lists_it_with_its_default_schedule_and_config():
    spec, defaults = BY_ID["$job_id"], file_defaults()
    assert spec.flow is $ident and spec.family == "$family" and spec.config_key == "$config_key"
    assert spec.default_schedule(defaults) == DefaultSchedule("$cron", "$timezone")
    assert spec.config_defaults is not None and spec.config_defaults(defaults) == {"items": list(DEFAULT_ITEMS)}
''')
TEST_IMPORTS = ("from core.settings import file_defaults", "from deployments.control.registry import BY_ID",
                "from $flow_module import DEFAULT_ITEMS, $ident", "from flows.spec import DefaultSchedule",
                "from tests.factories import history_rows")

LOCAL_JOBS = '''"""The jobs of this installation beyond the families': one module each, written by
``jobpipes new-job`` (which adds its line here), ending with its ``JOBS`` like a family's flow
module. ``deployments.control.registry`` lists their specs after the families', so deploy,
serve, ``prefect.yaml``, the operations API and page and ``jobpipes`` see them with no other
edit. Retire one by removing its line (and its files), then rewrite prefect.yaml:
``uv run python -m deployments.control.registry write-prefect-yaml``."""

MODULES: tuple[str, ...] = ()
'''
