"""Every table of every family, so that ``Base.metadata`` is complete.

Import this before creating tables, running Alembic, or flushing rows whose foreign keys
point into another family's table (``scheduled_jobs.brand_id``, ``job_execution_history.config_id``).
"""

from __future__ import annotations

from core.brands import models as brands
from core.crypto import models as crypto
from core.db import job_configurations, rate_limits, scheduled_jobs
from core.db.base import Base
from core.jobqueue import models as jobqueue
from core.profiles import models as profiles
from core.riot import models as riot
from core.runs import models as runs

metadata = Base.metadata
__all__ = ["Base", "brands", "crypto", "job_configurations", "jobqueue", "metadata", "profiles", "rate_limits", "riot", "runs", "scheduled_jobs"]
