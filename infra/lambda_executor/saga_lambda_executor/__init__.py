"""LocalStack plugin: run Lambda functions as local Python subprocesses, not Docker containers."""

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class SubprocessRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    """Selected with LAMBDA_RUNTIME_EXECUTOR=local-process."""

    name = "local-process"

    def load(self, *args, **kwargs):
        # Imported lazily: plux imports every plugin module of the namespace just to list them.
        from saga_lambda_executor.executor import SubprocessRuntimeExecutor

        return SubprocessRuntimeExecutor
