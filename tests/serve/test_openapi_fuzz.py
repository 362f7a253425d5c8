"""schemathesis against the app: every operation, positive and negative data, bounded budget.

Every built-in check runs and must pass. One setting differs from schemathesis's defaults:
data the schema calls valid may still get 400 from /v1/classify, since a schema can say
"binary" but not "a decodable image"; any 5xx or other status is still a failure.
"""

import pytest
from hypothesis import HealthCheck, settings

import ternpynq
from ternpynq.serve import create_app

# a dev tool, absent from the board-stack leg (runtime, serve extra and test tools only)
schemathesis = pytest.importorskip(
    "schemathesis", reason="needs schemathesis from the dev extra: pip install 'ternpynq[dev]'"
)
from schemathesis.config import SchemathesisConfig  # noqa: E402

MAX_EXAMPLES = 25  # per operation and mode: about 10 s in all on a shared 2-core machine


CONFIG = SchemathesisConfig.from_dict(
    {
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES},
        "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400"]}},
    }
)
# the shipped model: schemathesis needs the schema when the module is collected, and the app
# opens its model only on the first request that needs it
APP = create_app({"MODEL": str(ternpynq.DEFAULT_MODEL)})
schema = schemathesis.openapi.from_wsgi("/openapi.json", APP, config=CONFIG)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_description(case):
    case.call_and_validate()
