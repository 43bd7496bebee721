"""For a developer's machine: ``make demo`` (``demo``, ``demo_jobqueue``) and the long-lived
local Prefect server (``local_server``)."""
