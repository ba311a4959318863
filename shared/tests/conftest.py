import pytest

from shared.service import ServiceDefinition
from shared.testing.probe.service import DEFINITION


@pytest.fixture
def service_definition() -> ServiceDefinition:
    return DEFINITION
