"""In-memory implementations of the services' and the step runtime's ports, for tests (ours
and users').

They keep the contracts the real adapters keep (optimistic revisions, idempotent creates, the
lifecycle's transition table, the read model's unavailability) with no server, so a service's
rules are tested in milliseconds. The suites against the real stack test the adapters.
"""

from chalicelib.testing.bus import InMemoryEventBus, RecordingPusher
from chalicelib.testing.definitions import InMemoryDefinitionStore
from chalicelib.testing.executions import InMemoryExecutionStore
from chalicelib.testing.ledger import InMemoryStepLedger
from chalicelib.testing.orchestrator import ScriptedEngine
from chalicelib.testing.read_model import InMemoryReadModel

__all__ = ["InMemoryDefinitionStore", "InMemoryEventBus", "InMemoryExecutionStore",
           "InMemoryReadModel", "InMemoryStepLedger", "RecordingPusher",
           "ScriptedEngine"]
