"""What the tests share besides fixtures (those are in conftest.py): writing tenants
(`tenant`), reading warehouses (`warehouse`), the processes a test starts (`processes`)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # the project's top folder
DEMO = REPO / "demo"  # the bundled demo config and its sql/
