"""Secrets stay out of messages."""

from liftshift.redact import redact


def test_passwords_in_urls_and_parameters_are_hidden():
    text = "postgresql://app:s3cret@db:5432/shop?sslmode=require&password=other"
    out = redact(text)
    assert "s3cret" not in out and "other" not in out
    assert out.startswith("postgresql://app:***@db:5432/shop")
    assert redact("postgresql://app@db/shop") == "postgresql://app@db/shop"


def test_a_password_holding_url_characters_is_hidden_whole():
    for password in ("Secr/etXYZ", "Secr#etXYZ", "Secr?etXYZ", "p@ss/w:rd#1"):
        out = redact(f"cannot connect at postgresql://app:{password}@127.0.0.1:5432/shop: refused")
        assert out == "cannot connect at postgresql://app:***@127.0.0.1:5432/shop: refused"
