"""What every domain's Dagster definitions share: how an asset or a warehouse check is declared
(declare.py), its code version (code_versions.py), the settings resource, the partitions and the
audit tags of runs (shared.py)."""
