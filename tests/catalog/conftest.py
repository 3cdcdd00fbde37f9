import pytest


@pytest.fixture(autouse=True)
def _s3_settings(settings):
    """Credentials and a white-label bucket so media can be signed (no network needed to sign)."""
    from catalog import signing

    settings.AWS_ACCESS_KEY_ID = "testing-access-key"
    settings.AWS_SECRET_ACCESS_KEY = "testing-secret-key"
    settings.AWS_S3_REGION_NAME = "us-east-1"
    settings.AWS_S3_ENDPOINT_URL = None
    settings.WHITELABEL_BUCKET = "wl-bucket"
    settings.SIGNED_URL_TTL = 3600
    signing.reset()
    yield
    signing.reset()


@pytest.fixture
def subscriber(db):
    from tests.factories import SubscriptionFactory

    return SubscriptionFactory().user
