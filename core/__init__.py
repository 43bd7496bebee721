"""Everything that is not Prefect: settings, database, clients, storage, domain logic."""
