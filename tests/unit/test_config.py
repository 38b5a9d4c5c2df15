import pytest
from sluice.core.config import IngestSettings, StoreSettings
from sluice.core.errors import ConfigurationError


def test_ingest_settings_have_documented_defaults():
    settings = IngestSettings.from_env({"EVENTS_QUEUE_URL": "q", "DATABASE_URL": "postgresql:///x"})
    assert settings.max_event_bytes == 32 * 1024
    assert settings.max_batch_events == 500
    assert settings.max_batch_bytes == 1024 * 1024
    assert settings.cache.rules_ttl == 60
    assert settings.cache.keys_ttl == 60
    assert settings.cache.unknown_ttl == 5
    assert settings.cache.stale_max_age == 600


def test_overrides_are_parsed():
    settings = IngestSettings.from_env(
        {
            "EVENTS_QUEUE_URL": "q",
            "DB_SECRET_ARN": "arn:secret",
            "DB_HOST": "proxy",
            "MAX_EVENT_BYTES": "1024",
            "RULES_CACHE_TTL_SECONDS": "0.5",
        }
    )
    assert settings.max_event_bytes == 1024
    assert settings.cache.rules_ttl == 0.5
    assert settings.database.host == "proxy"


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigurationError) as caught:
        IngestSettings.from_env({"MAX_EVENT_BYTES": "lots", "KEYS_CACHE_TTL_SECONDS": "-1"})
    message = str(caught.value)
    for expected in (
        "EVENTS_QUEUE_URL",
        "MAX_EVENT_BYTES",
        "KEYS_CACHE_TTL_SECONDS",
        "DATABASE_URL",
    ):
        assert expected in message


def test_store_needs_a_database():
    with pytest.raises(ConfigurationError):
        StoreSettings.from_env({})
    assert StoreSettings.from_env({"DATABASE_URL": "postgresql:///x"}).database.url
