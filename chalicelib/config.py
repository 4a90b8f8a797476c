"""Settings: configs/config.yaml, overridden by the environment.

Precedence, lowest first: the YAML file (SAGA_CONFIG_FILE or configs/config.yaml), the classic
variables (DB_HOST, MONGODB_URI, KAFKA_BROKERS, ...), then SAGA__SECTION__KEY variables.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chalicelib.durations import parse_duration_ms

# The defaults of keys that code outside Settings also falls back on (a step runtime or a
# compiler built without Settings): spelled here, at the bottom layer, so the rest imports
# them.
# saga.max_result_bytes: the largest result a step may return.
DEFAULT_MAX_RESULT_BYTES = 64 * 1024
# saga.max_fanout_items: the most items one fan-out step runs.
DEFAULT_MAX_FANOUT_ITEMS = 100
# saga.max_child_depth: how deep child sagas nest.
DEFAULT_MAX_CHILD_DEPTH = 5
# saga.retriable_max_attempts.
DEFAULT_RETRIABLE_MAX_ATTEMPTS = 5
# saga.max_wait: the longest a callback step may wait, or a timer run, by default; a Standard
# state machine runs a year at most, so no setting goes past that.
DEFAULT_MAX_WAIT = "30d"
STANDARD_MAX_RUN_S = 365 * 24 * 3600
# read_model.history_retention: how long the read model keeps an execution's history (its
# events). Longer than the outbox keeps published events (7 days).
DEFAULT_HISTORY_RETENTION = "90d"
DEFAULT_HISTORY_RETENTION_S = 90 * 24 * 3600
_HISTORY_RETENTION_BOUNDS_S = (3600, 10 * 365 * 24 * 3600)

# In a checkout the file is configs/config.yaml; a Lambda package carries only app.py and
# chalicelib/, so packaging bundles it, as JSON, at chalicelib/configs/config.json.
_CHECKOUT_FILE = Path(__file__).resolve().parent.parent / "configs" / "config.yaml"
_BUNDLED_FILE = Path(__file__).resolve().parent / "configs" / "config.json"


def default_config_file() -> Path:
    return _BUNDLED_FILE if _BUNDLED_FILE.is_file() else _CHECKOUT_FILE


def config_dir() -> Path:
    """Where files the settings name by relative path (a JWKS file) are looked up."""
    return Path(os.environ.get("SAGA_CONFIG_FILE") or default_config_file()).parent

# Environment variables the seed's compose file uses, mapped to config paths.
_CLASSIC_VARIABLES: dict[str, tuple[str, ...]] = {
    "DB_HOST": ("database", "mysql", "host"),
    "DB_PORT": ("database", "mysql", "port"),
    "DB_USER": ("database", "mysql", "username"),
    "DB_PASSWORD": ("database", "mysql", "password"),
    "DB_NAME": ("database", "mysql", "database"),
    "MONGODB_URI": ("database", "mongodb", "uri"),
    "MONGODB_DB": ("database", "mongodb", "database"),
    "KAFKA_BROKERS": ("kafka", "brokers"),
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    port: str = ":8000"
    # The API's URL as partners reach it: callback links (a callback step's participant is
    # sent them) start with it. Empty: http://127.0.0.1 on `port` (the local stack). On AWS
    # the API Gateway stage URL, or the custom domain in front of it.
    public_url: str = ""
    read_timeout: str = "30s"
    write_timeout: str = "30s"
    idle_timeout: str = "120s"

    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://127.0.0.1:{self.port.lstrip(':')}"


class MySQLSettings(_Section):
    host: str = "127.0.0.1"
    port: int = 3306
    username: str = "saga"
    password: str = ""
    database: str = "saga_db"
    max_idle_conns: int = 10
    max_open_conns: int = 100
    conn_max_lifetime: int = 3600


class MongoSettings(_Section):
    uri: str = "mongodb://127.0.0.1:27017"
    database: str = "saga_db"
    max_pool_size: int = 100
    min_pool_size: int = 10
    max_idle_time: str = "30s"


class DatabaseSettings(_Section):
    mysql: MySQLSettings = MySQLSettings()
    mongodb: MongoSettings = MongoSettings()


class KafkaSettings(_Section):
    brokers: list[str] = ["127.0.0.1:9092"]
    group_id: str = "saga-group"
    topic: str = "saga-events"
    consumer_timeout: str = "10s"
    producer_timeout: str = "10s"
    # The producer's cap on one request; the API refuses input whose event would exceed it.
    max_request_size: int = 1024 * 1024
    # kafka-python's protocol version: "auto" asks the broker (Kafka 4.x locally, MSK on AWS).
    api_version: str = "auto"
    partitions: int = 3
    # The local stack's KRaft controller listener (the broker is brokers[0]).
    controller: str = "127.0.0.1:9093"

    def api_version_tuple(self) -> tuple[int, ...] | None:
        """kafka-python's api_version argument: None lets it probe the broker."""
        if self.api_version == "auto":
            return None
        return tuple(int(part) for part in self.api_version.split("."))


class AwsSettings(_Section):
    region: str = "us-east-1"
    endpoint_url: str = ""
    # Empty: asked of STS at first use. LocalStack's account is 000000000000.
    account_id: str = ""
    # The role Step Functions assumes to invoke the step Lambdas (created by infra/).
    state_machine_role_arn: str = ""
    # Deployed Lambdas are named {app_name}-{stage}-{function}, as Chalice names them.
    app_name: str = "saga-orchestrator"
    # Every AWS client retries throttling and transient errors with jittered backoff.
    retry_mode: Literal["standard", "adaptive"] = "standard"
    # Attempts in all, the first included.
    max_attempts: int = Field(default=5, ge=1, le=20)


class WebsocketSettings(_Section):
    # Where the push code reaches the API Gateway management API (@connections). Locally the
    # gateway of infra/ws_gateway.py; on AWS https://{api-id}.execute-api.{region}.amazonaws.com/{stage}.
    management_endpoint: str = "http://127.0.0.1:8002"
    # The local gateway's WebSocket port (ws://127.0.0.1:8001/ws).
    port: int = 8001
    # The URL browsers (the console) connect to; empty: the local gateway's,
    # ws://127.0.0.1:<port>/ws. On AWS the WebSocket API's wss:// stage URL.
    url: str = ""


class SagaSettings(_Section):
    name: str = "Saga Service"
    version: str = "1.0.0"
    description: str = ""
    max_sagas: int = 1000
    max_steps: int = 10000
    # One saga's steps; each is a Task (and a compensation Task) in one state machine.
    max_steps_per_saga: int = 100
    cleanup_interval: str = "1h"
    validation_enabled: bool = True
    caching_enabled: bool = True
    monitoring_enabled: bool = True
    auditing_enabled: bool = True
    retry_enabled: bool = True
    compensation_enabled: bool = True
    # Lets the execute body carry "faults" to inject; off unless a stage turns it on, never
    # in prod.
    fault_injection_enabled: bool = False
    # The reconciler looks at an active execution this long after the moment it was next
    # expected to move (chalicelib/domain/expected_by.py), so one that waits costs nothing.
    reconcile_after: str = "1m"
    # The largest result a step may return (bytes, as JSON); a larger one fails the step for
    # good. Results live in MySQL and ride in the step's event, never through Step Functions.
    max_result_bytes: int = Field(default=DEFAULT_MAX_RESULT_BYTES, ge=1024, le=512 * 1024)
    # Attempts of a retriable step (after the pivot) before its execution parks for an
    # operator; each retry forward gives it this many again. Backoff: 2 s doubling, at most
    # 60 s between attempts.
    retriable_max_attempts: int = Field(default=DEFAULT_RETRIABLE_MAX_ATTEMPTS, ge=1, le=100)
    # The late-action rule: a step cuts its participant's call at the deadline it sends (its
    # timeout), its Task waits this much longer, and a compensation is sent no sooner than
    # this after its action's last deadline. Whole seconds, 1s to 60s; a step's timeout may
    # be at most 900 s (Lambda's limit) less this.
    task_timeout_margin: str = "5s"
    # The longest a callback step may wait for its completion (its timeout), and a timer step
    # run: a duration, at most a year (a Standard state machine's limit).
    max_wait: str = DEFAULT_MAX_WAIT
    # A fan-out step (for_each) runs once per item of a list, at most this many items: an
    # execute whose input holds a longer list is refused (400), a longer list from an earlier
    # step's result fails the step. Each item's result may take max_result_bytes, but no more
    # than an even share of one event (Kafka's 1 MiB less the envelope), so the fan-out's
    # result {"items": [...]} always fits in its event.
    max_fanout_items: int = Field(default=DEFAULT_MAX_FANOUT_ITEMS, ge=1, le=1000)
    # Items of one fan-out that run at once, at most (a step's max_concurrency may be lower;
    # Step Functions' inline Map runs at most 40 iterations at a time).
    max_fanout_concurrency: int = Field(default=40, ge=1, le=40)
    # How deep child sagas may nest at run time: a top-level execution is depth 0, a child
    # step starting a child deeper than this fails for good (definitions refuse cycles, but a
    # later version of a called saga may make one).
    max_child_depth: int = Field(default=DEFAULT_MAX_CHILD_DEPTH, ge=1, le=20)
    # DescribeExecution calls one reconciler run may spend (AWS: a bucket of 300, 15/s).
    reconcile_describe_budget: int = Field(default=100, ge=1, le=300)
    # Inputs the built-in (demo) actions fall back on when an execution gives none, so the
    # documented examples run as written locally. Never used in prod.
    demo_input_defaults: dict[str, Any] = Field(default_factory=dict)
    supported_saga_types: list[str] = Field(default_factory=list)
    supported_step_types: list[str] = Field(default_factory=list)
    validation_rules: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)
    metadata: dict[str, str] = Field(default_factory=dict)


    @field_validator("task_timeout_margin")
    @classmethod
    def _whole_seconds(cls, value: str) -> str:
        ms = parse_duration_ms(value)
        if ms % 1000 or not 1000 <= ms <= 60_000:
            raise ValueError("must be whole seconds from 1s to 60s (Step Functions counts "
                             "a Task's timeout in seconds)")
        return value

    @field_validator("max_wait")
    @classmethod
    def _within_a_year(cls, value: str) -> str:
        ms = parse_duration_ms(value)
        if not 1000 <= ms <= STANDARD_MAX_RUN_S * 1000:
            raise ValueError("must be from 1s to 365d (a Standard state machine runs a year "
                             "at most)")
        return value

    @property
    def max_wait_s(self) -> int:
        return parse_duration_ms(self.max_wait) // 1000

    @property
    def task_timeout_margin_s(self) -> int:
        return parse_duration_ms(self.task_timeout_margin) // 1000


class ReadModelSettings(_Section):
    # How long an execution's history (GET /executions/{id}/history: its events, kept in
    # MongoDB beside its document) is kept after each event: a TTL index removes older ones.
    history_retention: str = DEFAULT_HISTORY_RETENTION

    @field_validator("history_retention")
    @classmethod
    def _whole_seconds_within_bounds(cls, value: str) -> str:
        ms = parse_duration_ms(value)
        low, high = _HISTORY_RETENTION_BOUNDS_S
        if ms % 1000 or not low * 1000 <= ms <= high * 1000:
            raise ValueError("must be whole seconds from 1h to 3650d (a TTL index counts "
                             "seconds)")
        return value

    @property
    def history_retention_s(self) -> int:
        return parse_duration_ms(self.history_retention) // 1000


class AuthSettings(_Section):
    # Bearer tokens on every REST route but /health, and on WebSocket $connect.
    enabled: bool = False
    # HS256: the shared secret (from a secret store in deployed stages, never the repository).
    hs256_secret: str = ""
    # RS256: a JWKS file of public keys, relative to the config file's folder or absolute.
    jwks_file: str = ""
    issuer: str = ""  # checked when set
    audience: str = ""  # checked when set
    roles_claim: str = "roles"
    leeway_seconds: int = 30


class CorsSettings(_Section):
    allow_origin: str = ""  # empty: no CORS headers; "*" or one origin
    allow_headers: list[str] = Field(default_factory=lambda: ["Authorization", "Content-Type"])
    max_age: int = 600


class LimitSettings(_Section):
    max_body_bytes: int = 1024 * 1024
    max_json_depth: int = 32
    # Step Functions caps a payload at 256 KB: inputs are kept in MySQL and machines get the
    # execution id only; this is the cap on what an execution may carry at all.
    max_input_bytes: int = 512 * 1024
    # Requests per caller (token subject, else source address) per window; 0 turns it off.
    rate_limit_requests: int = 600
    rate_limit_window_seconds: int = 60
    # The HMAC key pagination cursors are signed with (from a secret store in deployed
    # stages). Empty: one derived from the deployment's own secrets (database credentials,
    # the auth secret; on AWS from Secrets Manager). A new key makes outstanding cursors 400.
    cursor_secret: str = ""
    cors: CorsSettings = CorsSettings()


class Settings(_Section):
    stage: Literal["local", "test", "bench", "dev", "prod"] = "local"
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    kafka: KafkaSettings = KafkaSettings()
    aws: AwsSettings = AwsSettings()
    websocket: WebsocketSettings = WebsocketSettings()
    saga: SagaSettings = SagaSettings()
    read_model: ReadModelSettings = ReadModelSettings()
    auth: AuthSettings = AuthSettings()
    limits: LimitSettings = LimitSettings()


def _set_path(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = tree
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def _is_text_setting(path: tuple[str, ...]) -> bool:
    model: Any = Settings
    for index, name in enumerate(path):
        field = model.model_fields.get(name) if isinstance(model, type) else None
        if field is None:
            return False
        if index == len(path) - 1:
            return field.annotation is str
        model = field.annotation
    return False


def _parse_value(raw: str, path: tuple[str, ...]) -> Any:
    if path == ("kafka", "brokers"):
        return [broker.strip() for broker in raw.split(",") if broker.strip()]
    # Scalars stay text and the field's type converts them ("3307" -> 3307, "false" -> False),
    # so a str setting keeps "0.10" as written; lists and objects are given as JSON.
    if raw.lstrip().startswith(("[", "{")) and not _is_text_setting(path):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def _read_tree(path: Path) -> dict[str, Any]:
    # A Lambda package carries the settings as JSON: its cold start needs no YAML parser.
    if path.suffix == ".json":
        return dict(json.loads(path.read_text()))
    import yaml  # a checkout's YAML file: development and tests

    # libyaml's safe loader when PyYAML was built with it: ten times faster than the pure one.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return dict(yaml.load(path.read_text(), Loader=loader) or {})


def _merge(tree: dict[str, Any], overlay: Mapping[str, Any]) -> None:
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(tree.get(key), dict):
            _merge(tree[key], value)
        else:
            tree[key] = value


def _apply_stage_overlay(tree: dict[str, Any], environ: Mapping[str, str]) -> None:
    """The file's `stages.<stage>` section over its top level: what only some stages turn on
    (fault injection, demo inputs) is off everywhere else, AWS's dev stage included."""
    overlays = tree.pop("stages", None) or {}
    stages = Settings.model_fields["stage"].annotation.__args__  # type: ignore[union-attr]
    if not isinstance(overlays, Mapping) or set(overlays) - set(stages):
        raise ValueError(f"config key stages: sections must be named after a stage {stages}")
    stage = environ.get("SAGA_STAGE") or tree.get("stage") or "local"
    _merge(tree, overlays.get(stage) or {})


def load_settings(
    config_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    environ = os.environ if environ is None else environ
    path = config_file or Path(environ.get("SAGA_CONFIG_FILE") or default_config_file())
    tree = _read_tree(path)
    _apply_stage_overlay(tree, environ)
    for variable, config_path in _CLASSIC_VARIABLES.items():
        if variable in environ:
            _set_path(tree, config_path, _parse_value(environ[variable], config_path))
    for variable, raw in environ.items():
        if variable.startswith("SAGA__"):
            config_path = tuple(part.lower() for part in variable[len("SAGA__"):].split("__"))
            _set_path(tree, config_path, _parse_value(raw, config_path))
    if "SAGA_STAGE" in environ:
        tree["stage"] = environ["SAGA_STAGE"]
    return Settings.model_validate(tree)


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read once (Lambda containers reuse them across invocations)."""
    return load_settings()
