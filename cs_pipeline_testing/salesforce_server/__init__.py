"""A local, Salesforce-compatible server for tests and demos (see `local_server`)."""
