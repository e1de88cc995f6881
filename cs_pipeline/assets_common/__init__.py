"""What every domain's Dagster definitions share, one module per kind of thing: how a daily
asset or check is declared and run over a range of partitions (range_step.py), how an asset of
its own step is declared and what a warehouse asset returns (declare.py), its code version
(code_versions.py), the schema checks generated from the table registry (schema_checks.py), the
partitions and the domains' build context (partitions.py), the job names and range tags
(jobs.py), the settings resource and the runs' audit tags (settings.py).

Not here: a domain's own assets, checks and logic (its package), generic helpers that know
nothing of Dagster (cs_pipeline/lib/)."""
