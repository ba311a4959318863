import pytest

from services.scoring.service import DEFINITION
from shared.service import ServiceDefinition


@pytest.fixture
def service_definition() -> ServiceDefinition:
    return DEFINITION
