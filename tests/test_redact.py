"""Secrets stay out of messages."""

from liftshift.redact import redact


def test_passwords_in_urls_and_parameters_are_hidden():
    text = "postgresql://app:s3cret@db:5432/shop?sslmode=require&password=other"
    out = redact(text)
    assert "s3cret" not in out and "other" not in out
    assert out.startswith("postgresql://app:***@db:5432/shop")
    assert redact("postgresql://app@db/shop") == "postgresql://app@db/shop"
