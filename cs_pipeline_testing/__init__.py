"""Test and demo support that is not part of the pipeline: the local Salesforce-compatible
server (salesforce_server/, optional extra `salesforce-server`)."""
