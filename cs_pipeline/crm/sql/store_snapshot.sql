-- Store what the CRM source holds now as the snapshot of partition_date (registered frames
-- snapshot_accounts, snapshot_assets, snapshot_contacts). Variables: partition_date, run_id.
DELETE FROM crm_accounts_raw WHERE snapshot_date = getvariable('partition_date');
DELETE FROM crm_assets_raw WHERE snapshot_date = getvariable('partition_date');
DELETE FROM crm_contacts_raw WHERE snapshot_date = getvariable('partition_date');

INSERT INTO crm_accounts_raw
SELECT getvariable('partition_date'), salesforce_id, account_id, name, parent_salesforce_id, status,
    create_date, contract_value, renewal_date, licenses, map_from_entries(attributes),
    system_modstamp, getvariable('run_id')
FROM snapshot_accounts;

INSERT INTO crm_assets_raw
SELECT getvariable('partition_date'), *, getvariable('run_id') FROM snapshot_assets;

INSERT INTO crm_contacts_raw
SELECT getvariable('partition_date'), *, getvariable('run_id') FROM snapshot_contacts;
