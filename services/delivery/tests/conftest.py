import pytest

from services.delivery.service import DEFINITION
from shared.service import ServiceDefinition


@pytest.fixture
def service_definition() -> ServiceDefinition:
    return DEFINITION
