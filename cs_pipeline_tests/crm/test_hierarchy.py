"""The account dimension: hierarchy, virtual product accounts, issues
(docs/data-model.md#account-hierarchy-and-product-accounts, docs/lifecycle.md#status-catalog)."""

from datetime import date

import polars as pl

from cs_pipeline.crm.hierarchy import RAW_ACCOUNT_SCHEMA, RAW_ASSET_SCHEMA, resolve_accounts

CATALOG = [
    ("Trial", "Free"), ("Internal-use", "Free"), ("Personal", "Paying"), ("Pro", "Paying"),
    ("Enterprise", "Paying"), ("Cancelled", "Canceled"),
]  # fmt: skip


def account(salesforce_id: str, account_id: str | None, parent: str | None = None, **fields) -> dict:
    return {
        "salesforce_id": salesforce_id, "account_id": account_id, "name": fields.pop("name", account_id),
        "parent_salesforce_id": parent, "system_modstamp": "2025-11-01T00:00:00.000+0000", **fields,
    }  # fmt: skip


def holding(salesforce_id: str, holder: str, code: str | None, **fields) -> dict:
    return {"salesforce_id": salesforce_id, "account_salesforce_id": holder, "product_code": code,
            "product_name": fields.pop("product_name", code), **fields}  # fmt: skip


def resolve(accounts: list[dict], holdings: list[dict] = (), separator: str = "_"):
    accounts_frame = pl.DataFrame(accounts, schema=RAW_ACCOUNT_SCHEMA)
    holdings_frame = pl.DataFrame(list(holdings), schema=RAW_ASSET_SCHEMA)
    return resolve_accounts(accounts_frame, holdings_frame, status_catalog=CATALOG, product_separator=separator)


def by_id(frame: pl.DataFrame) -> dict[str, dict]:
    return {row["account_id"]: row for row in frame.iter_rows(named=True)}


def issues(resolution) -> list[tuple]:
    return sorted(resolution.issues.select("account_id", "issue").rows(), key=str)


def test_spec_appendix_hierarchy_with_virtual_product_accounts():
    resolution = resolve(
        [
            account("001A", "XYZ", name="Acme INC", status="Enterprise"),
            account("001B", "ABC", "001A", name="Acme Boston", status="Pro"),
        ],
        [
            holding("02i1", "001A", "Widget1", product_name="Widget 1"),
            holding("02i2", "001B", "Widget2", product_name="Widget 2"),
            holding("02i3", "001B", "Widget1", product_name="Widget 1"),
        ],
    )
    rows = by_id(resolution.accounts)
    expected = {
        # account_id: (name, parent_id, root_id, depth, path, account_type, product_key)
        "XYZ": ("Acme INC", None, "XYZ", 0, ["XYZ"], "account", None),
        "ABC": ("Acme Boston", "XYZ", "XYZ", 1, ["XYZ", "ABC"], "account", None),
        "XYZ_Widget1": ("Acme INC - Widget 1", "XYZ", "XYZ", 1, ["XYZ", "XYZ_Widget1"], "product", "Widget1"),
        "ABC_Widget2": ("Acme Boston - Widget 2", "ABC", "XYZ", 2, ["XYZ", "ABC", "ABC_Widget2"], "product", "Widget2"),
        "ABC_Widget1": ("Acme Boston - Widget 1", "ABC", "XYZ", 2, ["XYZ", "ABC", "ABC_Widget1"], "product", "Widget1"),
    }
    actual = {
        key: (r["name"], r["parent_id"], r["root_id"], r["depth"], r["path"], r["account_type"], r["product_key"])
        for key, r in rows.items()
    }
    assert actual == expected
    assert resolution.issues.is_empty()


def test_product_separator_is_configurable():
    resolution = resolve([account("001A", "XYZ")], [holding("02i1", "001A", "Widget1")], separator="::")
    assert set(by_id(resolution.accounts)) == {"XYZ", "XYZ::Widget1"}


def test_product_account_takes_holding_values_and_inherits_empty_status_and_create_date():
    resolution = resolve(
        [account("001A", "XYZ", status="Enterprise", create_date="2024-03-01", renewal_date="2026-03-01",
                 licenses="50", contract_value="120000", attributes=[{"key": "segment", "value": "Enterprise"}])],
        [
            holding("02i1", "001A", "Widget1", licenses="20", contract_value="5000", create_date="2024-04-01",
                    status="Trial"),
            holding("02i2", "001A", "Widget2"),
        ],
    )  # fmt: skip
    rows = by_id(resolution.accounts)
    own = rows["XYZ_Widget1"]
    assert (own["status"], own["status_group"], own["create_date"]) == ("Trial", "Free", date(2024, 4, 1))
    assert (own["licenses"], own["contract_value"], own["renewal_date"]) == (20.0, 5000.0, None)
    inherited = rows["XYZ_Widget2"]
    assert (inherited["status"], inherited["status_group"], inherited["create_date"]) == (
        "Enterprise", "Paying", date(2024, 3, 1))  # fmt: skip
    # an empty Quantity or Price stays null: nothing is inherited but status and create date
    assert (inherited["licenses"], inherited["contract_value"], inherited["renewal_date"]) == (None, None, None)
    assert inherited["attributes"] == [{"key": "segment", "value": "Enterprise"}]


def test_duplicate_id_keeps_latest_modstamp_then_larger_salesforce_id():
    resolution = resolve(
        [
            account("001A", "DUP", name="older", system_modstamp="2025-01-01T00:00:00.000+0000"),
            account("001B", "DUP", name="newer", system_modstamp="2025-02-01T00:00:00.000+0000"),
            account("001C", "TIE", name="smaller id"),
            account("001D", "TIE", name="larger id"),
        ]
    )
    rows = by_id(resolution.accounts)
    assert rows["DUP"]["name"] == "newer"
    assert rows["TIE"]["name"] == "larger id"
    assert issues(resolution) == [("DUP", "duplicate_id"), ("TIE", "duplicate_id")]
    detail = resolution.issues.filter(pl.col("account_id") == "DUP")["detail"].item()
    assert "001A dropped; kept 001B" in detail


def test_child_of_a_dropped_duplicate_keeps_its_parent():
    resolution = resolve(
        [
            account("001A", "P", system_modstamp="2025-01-01T00:00:00.000+0000"),
            account("001B", "P", system_modstamp="2025-02-01T00:00:00.000+0000"),
            account("001C", "CHILD", "001A"),
        ]
    )
    assert by_id(resolution.accounts)["CHILD"]["path"] == ["P", "CHILD"]


def test_orphan_parent_becomes_a_root_and_is_reported():
    resolution = resolve([account("001A", "ORPHAN", "001MISSING"), account("001B", "KID", "001A")])
    rows = by_id(resolution.accounts)
    assert (rows["ORPHAN"]["parent_id"], rows["ORPHAN"]["root_id"], rows["ORPHAN"]["depth"]) == (None, "ORPHAN", 0)
    assert rows["KID"]["path"] == ["ORPHAN", "KID"]
    assert issues(resolution) == [("ORPHAN", "orphan_parent")]
    assert "001MISSING" in resolution.issues["detail"].item()


def test_every_member_of_a_cycle_becomes_a_root_and_tails_keep_their_links():
    # A -> B -> C -> A is a cycle; T hangs below C; S is its own parent.
    resolution = resolve(
        [
            account("001A", "A", "001B"),
            account("001B", "B", "001C"),
            account("001C", "C", "001A"),
            account("001T", "T", "001C"),
            account("001S", "S", "001S"),
        ]
    )
    rows = by_id(resolution.accounts)
    for member in ("A", "B", "C", "S"):
        assert (rows[member]["parent_id"], rows[member]["root_id"], rows[member]["depth"]) == (None, member, 0)
    assert (rows["T"]["parent_id"], rows["T"]["root_id"], rows["T"]["path"]) == ("C", "C", ["C", "T"])
    assert issues(resolution) == [("A", "cycle"), ("B", "cycle"), ("C", "cycle"), ("S", "cycle")]


def test_deep_chain_gets_depth_and_path_from_its_root():
    chain = [account("001-0", "L0")] + [account(f"001-{n}", f"L{n}", f"001-{n - 1}") for n in range(1, 6)]
    row = by_id(resolve(chain).accounts)["L5"]
    assert (row["root_id"], row["depth"], row["path"]) == ("L0", 5, ["L0", "L1", "L2", "L3", "L4", "L5"])


def test_status_catalog_is_case_insensitive_and_unknown_keeps_the_text():
    resolution = resolve(
        [
            account("001A", "A", status="pRo"),
            account("001B", "B", status="internal-USE"),
            account("001C", "C", status="Legacy"),
            account("001D", "D", status=None),
            account("001E", "E", status="CANCELLED"),
        ]
    )
    statuses = {r["account_id"]: (r["status"], r["status_group"]) for r in resolution.accounts.iter_rows(named=True)}
    assert statuses == {
        "A": ("Pro", "Paying"),
        "B": ("Internal-use", "Free"),
        "C": ("Legacy", "Unknown"),
        "D": (None, "Unknown"),
        "E": ("Cancelled", "Canceled"),
    }


def test_dates_and_numbers_parse_or_are_reported():
    resolution = resolve(
        [
            account("001A", "A", create_date="2025-11-10T23:30:00.000-0500", contract_value="3.0", licenses="0"),
            account("001B", "B", create_date="11/10/2025", contract_value="1,000", renewal_date="2026-02-30"),
        ]
    )
    rows = by_id(resolution.accounts)
    # a Salesforce datetime counts by its UTC date: 23:30 at -05:00 is the next day in UTC
    assert (rows["A"]["create_date"], rows["A"]["contract_value"], rows["A"]["licenses"]) == (
        date(2025, 11, 11), 3.0, 0.0)  # fmt: skip
    assert (rows["B"]["create_date"], rows["B"]["contract_value"], rows["B"]["renewal_date"]) == (None, None, None)
    details = sorted(resolution.issues.filter(pl.col("issue") == "invalid_value")["detail"])
    assert details == [
        "contract_value '1,000' is not a valid number; stored as null",
        "create_date '11/10/2025' is not a valid date; stored as null",
        "renewal_date '2026-02-30' is not a valid date; stored as null",
    ]


def test_holdings_without_holder_or_product_code_are_dropped_and_reported():
    resolution = resolve(
        [account("001A", "XYZ")],
        [holding("02i1", "001NOPE", "Widget1"), holding("02i2", "001A", None)],
    )
    assert set(by_id(resolution.accounts)) == {"XYZ"}
    assert sorted(resolution.issues.select("issue", "detail").rows()) == [
        ("missing_product_code", "Asset 02i2 has no product code; the holding is dropped"),
        ("orphan_parent", "Asset 02i1 names AccountId 001NOPE that does not exist; the holding is dropped"),
    ]


def test_virtual_id_colliding_with_a_real_account_is_a_duplicate():
    resolution = resolve(
        [
            account("001A", "XYZ"),
            account("001B", "XYZ_Widget1", system_modstamp="2025-12-01T00:00:00.000+0000"),
        ],
        [holding("02i1", "001A", "Widget1")],
    )
    assert by_id(resolution.accounts)["XYZ_Widget1"]["account_type"] == "account"
    assert issues(resolution) == [("XYZ_Widget1", "duplicate_id")]


def test_an_issue_about_a_record_with_blank_ids_still_says_what_it_is():
    resolution = resolve(
        [account(None, None), account("001B", "B")],
        [holding(None, None, "Widget1")],
    )
    assert set(by_id(resolution.accounts)) == {"B"}
    assert sorted(resolution.issues.select("issue", "detail").rows()) == [
        ("missing_id", "Account with Salesforce Id (blank) has no account ID; dropped"),
        ("orphan_parent", "Asset (blank) names AccountId (blank) that does not exist; the holding is dropped"),
    ]


def test_account_without_any_id_is_dropped_and_reported():
    resolution = resolve([account("001A", None), account("001B", "B")])
    assert set(by_id(resolution.accounts)) == {"B"}
    assert resolution.issues.select("issue", "detail").rows() == [
        ("missing_id", "Account with Salesforce Id 001A has no account ID; dropped")
    ]
