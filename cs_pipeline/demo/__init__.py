"""Demo tenant: a synthetic CRM export and usage landing zone (see `generator`)."""
