"""Process-wide settings from LIFTSHIFT_* environment variables."""

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Overrides that apply to every plan run in this process."""

    model_config = SettingsConfigDict(env_prefix="LIFTSHIFT_", extra="ignore")

    ledger_url: str | None = None
    dask_address: str | None = None
    dask_workers: int | None = None


def settings() -> Settings:
    """Read the settings afresh (tests change the environment between runs)."""
    return Settings()
