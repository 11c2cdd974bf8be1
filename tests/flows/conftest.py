import pytest
from prefect.testing.utilities import prefect_test_harness


@pytest.fixture(autouse=True, scope="session")
def prefect_server():
    """One temporary Prefect server (and database) for every flow test in the session."""
    with prefect_test_harness(server_startup_timeout=120):
        yield
