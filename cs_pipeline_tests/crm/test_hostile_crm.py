"""Hostile CRM exports (docs/hostile-input.md): a fuzzer (Hypothesis, fixed seed, bounded
examples) over Account.csv / Asset.csv / Contact.csv, and examples of each file-level problem.

The property: either the snapshot is read and every live account row is an account of the
resolved dimension (values that do not parse are hierarchy issues, never a failure), or the
read fails with a CrmExportError naming the file at fault, and the warehouse is unchanged
(the snapshot is stored only after every file was read).
"""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cs_pipeline import cli
from cs_pipeline.config import load_config
from cs_pipeline.crm.assets import store_crm_snapshot
from cs_pipeline.crm.hierarchy import resolve_accounts
from cs_pipeline.crm.mapping import extract_snapshot
from cs_pipeline.crm.sources import CrmExportError, CrmFilesSource
from cs_pipeline.warehouse import connect
from cs_pipeline_tests.support.tenant import ACCOUNT_HEADER, ASSET_HEADER, CONTACT_HEADER, write_tenant
from cs_pipeline_tests.support.warehouse import warehouse_digest

D = date(2025, 11, 21)
CORRUPTIONS = ["unterminated_quote", "utf16", "bad_byte", "semicolons", "missing_column", "extra_field"]

text_value = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)


def render(header: list[str], rows: list[dict], corruption: str | None, bom: bool) -> bytes:
    if corruption == "missing_column":
        header = [name for name in header if name != "Name" and name != "AccountId"]
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=header, delimiter=";" if corruption == "semicolons" else ",", lineterminator="\n",
        extrasaction="ignore",
    )  # fmt: skip
    writer.writeheader()
    writer.writerows(rows)
    text = buffer.getvalue()
    if corruption == "utf16":
        return text.encode("utf-16")
    data = ("\ufeff" if bom else "").encode() + text.encode()
    if corruption == "bad_byte":
        return data + b"\xff\xfe,x\n"
    if corruption == "unterminated_quote":
        return data + b'001Z,"never closed\n' + b"001Y,ok\n" * 50
    if corruption == "extra_field":
        return data + b"a,b," + b",".join([b"x"] * len(header)) + b"\n"
    return data


@st.composite
def exports(draw) -> tuple[dict[str, bytes], list[str], str | None]:
    """The three files' bytes, the account_ids the live accounts must get, the file that must fail."""
    accounts, expected = [], []
    for n in range(draw(st.integers(1, 6))):
        suffix = draw(text_value).strip() if draw(st.booleans()) else ""
        external = draw(st.sampled_from(["", "  ", f"X{n}-"])) + suffix
        deleted = draw(st.sampled_from(["false", "false", "true", "", "TRUE"]))
        accounts.append({
            "Id": f"001{n}", "External_Id__c": external, "Name": draw(text_value), "Status__c": draw(text_value),
            "Customer_Since__c": draw(st.sampled_from(["2024-03-01", "31/03/2026", "", "2025-02-30"])),
            "Contract_Value__c": draw(st.sampled_from(["120000", "1,5", "abc", "", " 3.0 "])),
            "Licenses__c": draw(st.sampled_from(["10", "-1", "ten", ""])), "IsDeleted": deleted,
            "SystemModstamp": "2025-11-01T00:00:00.000+0000",
        })  # fmt: skip
        if deleted.lower() != "true":
            expected.append(external.strip() or f"001{n}")
    assets = [
        {"Id": f"02i{n}", "AccountId": f"001{n}", "Product2.ProductCode": draw(text_value), "Quantity": "x"}
        for n in range(draw(st.integers(0, 3)))
    ]
    contacts = [{"Id": "003A", "AccountId": "0010", "Email": draw(text_value), "Name": draw(text_value)}]
    broken = draw(st.sampled_from([None, None, "Account.csv", "Account.csv", "Asset.csv", "Contact.csv"]))
    corruption = draw(st.sampled_from(CORRUPTIONS)) if broken else None
    files = {}
    for name, header, rows in (
        ("Account.csv", ACCOUNT_HEADER, accounts),
        ("Asset.csv", ASSET_HEADER, assets),
        ("Contact.csv", CONTACT_HEADER, contacts),
    ):
        files[name] = render(header, rows, corruption if name == broken else None, bom=draw(st.booleans()))
    return files, expected, broken


@pytest.fixture(scope="module")
def tenant(tmp_path_factory) -> Path:
    """The appendix tenant with its snapshot of D-1 stored."""
    root = tmp_path_factory.mktemp("crm")
    config = load_config(write_tenant(root))
    con = connect(config.warehouse)
    frames = extract_snapshot(CrmFilesSource(files_dir=str(config.crm.files_dir)), config)
    store_crm_snapshot(con, date(2025, 11, 20), frames, "r")
    con.close()
    return root


@pytest.mark.e2e
@pytest.mark.fuzz
@settings(
    derandomize=True, max_examples=40, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip
@given(export=exports())
def test_any_export_resolves_every_live_account_or_fails_naming_the_file_and_changes_nothing(tenant, export):
    files, expected, broken = export
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        shutil.copytree(tenant, root, dirs_exist_ok=True)
        for name, data in files.items():
            (root / "crm" / name).write_bytes(data)
        config = load_config(root / "cs_pipeline.yaml")
        con = connect(config.warehouse)
        try:
            before = warehouse_digest(con)
            try:
                frames = extract_snapshot(CrmFilesSource(files_dir=str(config.crm.files_dir)), config)
            except CrmExportError as exc:
                event(f"failed: {exc.path.name}")
                assert exc.path.name == broken and broken in str(exc)
                assert len(str(exc).splitlines()) == 1 and len(str(exc)) < 500
                assert warehouse_digest(con) == before
                return
            assert broken is None, f"{broken} should have failed"
            event("read")
            resolution = resolve_accounts(
                frames["crm_accounts_raw"], frames["crm_assets_raw"], status_catalog=config.status_catalog(),
                product_separator="_",
            )  # fmt: skip
            crm_accounts = resolution.accounts.filter(resolution.accounts["account_type"] == "account")
            assert sorted(crm_accounts["account_id"].to_list()) == sorted(expected)
            store_crm_snapshot(con, D, frames, "r")
            [(stored,)] = con.execute(
                "SELECT count(*) FROM crm_account_versions WHERE in_force(valid_from, valid_to, ?)", [D]
            ).fetchall()
            assert stored == len(expected)
        finally:
            con.close()


# --------------------------------------------------------------------------- examples


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        (b"Id,External_Id__c,Name\n001A,XYZ,Acme\n001B,\"ABC,Acme Boston\n" + b"001C,DEF,Other\n" * 500,
         ["Account.csv, line 3", "unterminated quote"]),
        ("Id,External_Id__c,Name\n001A,XYZ,Acme\n".encode("utf-16"), ["Account.csv", "encoding", "UTF-16"]),
        ("Id,External_Id__c,Name\n001A,XYZ,Acme\n".encode("utf-16-le"), ["Account.csv, line 1", "encoding", "NUL"]),
        (b"Id,External_Id__c,Name\n001A,XYZ,Acme\n001B,ABC,Caf\xe9\n", ["Account.csv, line 3", "encoding", "UTF-8"]),
    ],
    ids=["unterminated_quote", "utf16", "utf16_without_bom", "latin1"],
)  # fmt: skip
def test_unreadable_account_export_is_one_short_error_with_file_line_and_cause(tmp_path, data, fragments):
    config = load_config(write_tenant(tmp_path))
    (tmp_path / "crm" / "Account.csv").write_bytes(data)
    with pytest.raises(CrmExportError) as caught:
        extract_snapshot(CrmFilesSource(files_dir=str(config.crm.files_dir)), config)
    message = str(caught.value)
    assert len(message.splitlines()) == 1 and len(message) < 300
    for fragment in fragments:
        assert fragment in message


@pytest.mark.e2e
def test_broken_export_fails_the_run_at_once_without_retries(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    config = write_tenant(tmp_path)
    (tmp_path / "crm" / "Account.csv").write_bytes(b'Id,Name\n001A,"Acme\n' + b"001B,Other\n" * 200)
    started = time.monotonic()

    assert cli.main(["--config", str(config), "materialize", "--date", "2025-11-21"]) == 1

    # crm_snapshot's retry policy waits 30 s before a retry: a bad file must not get one
    assert time.monotonic() - started < 30
    err = capsys.readouterr().err
    assert "Account.csv, line 2: a quoted value is never closed (unterminated quote)" in err
    assert "001B,Other" not in err  # the file's content is not quoted
