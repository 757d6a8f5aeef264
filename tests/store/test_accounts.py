"""Accounts on SQLite and PostgreSQL: users, scrypt passwords, hashed tokens, broker ids."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import NOW

from fabnet.errors import Conflict, InvalidInput, NotFound
from fabnet.hub.users_cli import users
from fabnet.store import Store
from fabnet.store.accounts import token_digest

PASSWORD = "correct horse battery"


def test_users_roles_and_passwords(store: Store) -> None:
    a = store.accounts
    ada = a.add_user("ada@example.org", PASSWORD, ["maker", "requester"], NOW, maker_ids=["ada"])
    assert ada.roles == {"maker", "requester"} and ada.maker_ids == {"ada"}
    assert a.check_password("ada@example.org", PASSWORD) == ada
    assert a.check_password("ada@example.org", PASSWORD + "x") is None
    assert a.check_password("nobody", PASSWORD) is None
    assert a.find_user(ada.user_id) == ada and a.user_named("ada@example.org") == ada
    with pytest.raises(Conflict):
        a.add_user("ada@example.org", PASSWORD, ["requester"], NOW)
    for args, needle in (
        (("bob", PASSWORD, ["admin"]), "role must be one of"),
        (("bob", PASSWORD, []), "at least one role"),
        (("bob", "short", ["requester"]), "at least 8 characters"),
        (("bob smith", PASSWORD, ["requester"]), "user name must be"),
    ):
        with pytest.raises(InvalidInput, match=needle):
            a.add_user(*args, NOW)
    with pytest.raises(InvalidInput, match="maker_ids need the maker role"):
        a.add_user("rita", PASSWORD, ["requester"], NOW, maker_ids=["x"])
    a.set_password("ada@example.org", "another password")
    assert a.check_password("ada@example.org", PASSWORD) is None
    assert a.check_password("ada@example.org", "another password") is not None


def test_salts_differ_and_hashes_are_scrypt(store: Store) -> None:
    from sqlalchemy import select

    from fabnet.store.account_models import UserRow

    store.accounts.add_user("one", PASSWORD, ["requester"], NOW)
    store.accounts.add_user("two", PASSWORD, ["requester"], NOW)
    with store.db.read() as s:
        rows = list(s.scalars(select(UserRow)))
    assert rows[0].password_salt != rows[1].password_salt
    assert rows[0].password_hash != rows[1].password_hash
    assert PASSWORD.encode() not in rows[0].password_hash


def test_tokens_hashed_last_used_and_revoked(store: Store) -> None:
    a = store.accounts
    user = a.add_user("rita", PASSWORD, ["requester"], NOW)
    raw, info = a.issue_token(user.user_id, "laptop", NOW)
    assert a.user_by_token(raw, NOW + timedelta(seconds=5)) == user
    assert a.user_by_token(raw + "x", NOW) is None
    assert a.list_tokens(user.user_id)[0].last_used_at == NOW + timedelta(seconds=5)
    a.user_by_token(raw, NOW + timedelta(seconds=20))  # within a minute: not written again
    assert a.list_tokens(user.user_id)[0].last_used_at == NOW + timedelta(seconds=5)
    from sqlalchemy import select

    from fabnet.store.account_models import TokenRow

    with store.db.read() as s:
        stored = s.scalars(select(TokenRow.token_sha256)).one()
    assert stored == token_digest(raw) != raw
    a.revoke_token(user.user_id, info.token_id, NOW)
    assert a.user_by_token(raw, NOW) is None
    with pytest.raises(NotFound):
        a.revoke_token("someone-else", info.token_id, NOW)


def test_maker_ids_and_broker_accounts(store: Store) -> None:
    a = store.accounts
    ada = a.add_user("ada", PASSWORD, ["maker"], NOW)
    bob = a.add_user("bob", PASSWORD, ["maker"], NOW)
    assert a.add_maker_id(ada.user_id, "ada-shop").maker_ids == {"ada-shop"}
    with pytest.raises(Conflict):
        a.add_maker_id(bob.user_id, "ada-shop")
    assert a.add_broker_account("ada-shop", "$7$hash", ada.user_id, NOW) is True
    assert a.add_broker_account("ada-shop", "$7$other", ada.user_id, NOW) is False
    assert a.broker_hashes() == {"ada-shop": "$7$hash"}


def test_users_cli(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    config = tmp_path / "hub.toml"
    config.write_text(
        f'[hub]\nid = "h"\n[broker]\npassword = "{"x" * 20}"\n[database]\nurl = "sqlite:///{db}"\n'
        f'[http]\napi_token = "{"t" * 20}"\n'
    )
    runner = CliRunner()
    added = runner.invoke(
        users,
        ["add", "ada", "--role", "maker", "--role", "requester", "--maker-id", "ada-shop",
         "--password", PASSWORD, "--config", str(config)],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "maker, requester" in added.output
    issued = runner.invoke(users, ["token", "ada", "--name", "agent", "--config", str(config)])
    assert issued.exit_code == 0, issued.output
    raw = issued.output.strip().splitlines()[-1]
    store = Store(f"sqlite:///{db}")
    try:
        assert store.accounts.user_by_token(raw, NOW) is not None
    finally:
        store.close()
    listed = runner.invoke(users, ["list", "--config", str(config)])
    assert "ada" in listed.output and "ada-shop" in listed.output


def test_listings_ledger_series_matches_the_core(store: Store) -> None:
    """The SQL-summed series equals ``fabnet.core.ledger.series`` over the same entries."""
    from fabnet.core.ledger import LedgerKey
    from fabnet.store.listings import Listings
    from fabnet.store.models import JobRow, LedgerRow, MakerRow, TaskRow

    rows = []
    design_id = _design(store)
    with store.db.write() as s:
        s.add(MakerRow(id="m", name="m", created_at=NOW))
        s.add(JobRow(id="j" * 32, requester="r", design_id=design_id, kind="fdm", material="PLA",
                     quantity=6, part_x_mm=1, part_y_mm=1, part_z_mm=1, hours_per_part=1,
                     quality="normal", priority=0, deadline=None, parts_per_task=1,
                     max_attempts=3, nozzle_mm=None, created_at=NOW))  # fmt: skip
        for i in range(6):
            task_id = f"{i:032x}"
            s.add(TaskRow(id=task_id, job_id="j" * 32, index=i, parts=1, size_x_mm=1, size_y_mm=1,
                          size_z_mm=1, estimated_hours=1, kind="fdm", material="PLA", nozzle_mm=None,
                          priority=0, deadline=None, state="done", max_attempts=3, offer_no=1,
                          machine_id=None, offer_until=None, lease_until=None, progress=1,
                          created_at=NOW, updated_at=NOW))  # fmt: skip
            s.flush()
            rows.append(LedgerRow(task_id=task_id, job_id="j" * 32, maker_id="m", machine_id="m/x",
                                  design_id=design_id, material=("PLA", "PETG")[i % 2],
                                  grams=1.5 * i, machine_hours=0.25, parts=1,
                                  finished_at=NOW + timedelta(minutes=25 * i)))  # fmt: skip
        s.add_all(rows)
    since, until, bucket = NOW - timedelta(minutes=30), NOW + timedelta(hours=3), timedelta(hours=1)
    for by in (LedgerKey.MATERIAL, LedgerKey.MAKER):
        expected = store.ledger_series(since, until, bucket, by)
        assert Listings(store.db).ledger_series(since, until, bucket, by) == expected


def _design(store: Store) -> str:
    from fabnet.core.designs import Design

    design_id = "d" * 64
    store.catalog.add_design(Design(design_id=design_id, name="d", bbox_mm=(1.0, 1.0, 1.0)), NOW)
    return design_id
