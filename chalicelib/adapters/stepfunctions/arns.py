"""ARNs of the state machines, their runs and the Lambdas their Tasks call, derived from
names: no call to AWS."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StatesArns:
    """State machines and runs of one account and region."""

    region: str
    account: str

    @property
    def _prefix(self) -> str:
        return f"arn:aws:states:{self.region}:{self.account}"

    def machine(self, name: str) -> str:
        return f"{self._prefix}:stateMachine:{name}"

    def run(self, machine_arn: str, name: str) -> str:
        machine = machine_arn.rsplit(":", 1)[-1]
        return f"{self._prefix}:execution:{machine}:{name}"


@dataclass(frozen=True)
class FunctionNames:
    """Deployed Lambda names, as Chalice names them: {app}-{stage}-{function}."""

    app: str
    stage: str
    region: str
    account: str

    def arn(self, function: str) -> str:
        return (f"arn:aws:lambda:{self.region}:{self.account}:function:"
                f"{self.app}-{self.stage}-{function}")
