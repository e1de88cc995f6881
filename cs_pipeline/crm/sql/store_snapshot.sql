-- What the CRM source holds now (registered frames snapshot_accounts, snapshot_assets,
-- snapshot_contacts) as rows of the versioned tables, which crm/versions.py stores as the
-- snapshot of the partition date (the accounts' attributes as their entries: crm/versions.py
-- makes maps of them only in the rows it writes).
CREATE OR REPLACE TEMP VIEW incoming_crm_account_versions AS SELECT * FROM snapshot_accounts;
CREATE OR REPLACE TEMP VIEW incoming_crm_asset_versions AS SELECT * FROM snapshot_assets;
CREATE OR REPLACE TEMP VIEW incoming_crm_contact_versions AS SELECT * FROM snapshot_contacts;
