from __future__ import annotations

from pathlib import Path

import pytest

from rose_cart.cli import main


def test_migrate_then_one_reconcile_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CART_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    assert main(["migrate"]) == 0
    assert "database at head" in capsys.readouterr().out
    assert (tmp_path / "cli.db").exists()
    assert main(["check-payments"]) == 0
    assert "checked 0: 0 paid, 0 expired, 0 errors" in capsys.readouterr().out


def test_bad_configuration_is_reported_not_raised(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CART_PORT", "not-a-port")
    assert main(["migrate"]) == 2
    assert "configuration error: CART_PORT" in capsys.readouterr().err
