"""Settings: the YAML file carries the service's config keys; the environment overrides them."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from chalicelib.config import Settings, load_settings


def rules_of(settings: Settings) -> dict[str, dict[str, dict[str, object]]]:
    return settings.saga.validation_rules


def test_the_shipped_config_loads_with_every_contract_key() -> None:
    settings = load_settings(environ={})
    assert settings.database.mysql.database == "saga_db"
    assert settings.kafka.topic == "saga-events"
    assert settings.kafka.group_id == "saga-group"
    assert settings.saga.max_sagas == 1000 and settings.saga.max_steps == 10000
    # Free-form types by default (a team's own CheckoutSaga); the key still restricts them.
    assert settings.saga.supported_saga_types == []
    assert settings.saga.supported_step_types == []
    assert rules_of(settings)["step"]["action"]["max_length"] == 2048
    rules = settings.saga.validation_rules
    assert rules["saga"]["version"] == {"required": True, "format": "semver"}
    assert rules["step"]["max_retries"] == {"required": True, "min": 0, "max": 10}
    assert rules["step"]["timeout"] == {"required": True, "min": "1s", "max": "14m"}


def test_nested_environment_overrides_are_typed() -> None:
    settings = load_settings(environ={
        "SAGA__DATABASE__MYSQL__PORT": "3307",
        "SAGA__SAGA__AUDITING_ENABLED": "false",
        "SAGA__AWS__ENDPOINT_URL": "",
        "SAGA_STAGE": "prod",
    })
    assert settings.database.mysql.port == 3307
    assert settings.saga.auditing_enabled is False
    assert settings.aws.endpoint_url == ""
    assert settings.stage == "prod"


def test_classic_variables_override_the_file_and_lose_to_saga_variables() -> None:
    settings = load_settings(environ={
        "DB_HOST": "db.internal",
        "KAFKA_BROKERS": "k1:9092, k2:9092",
        "MONGODB_URI": "mongodb://m:27017",
        "SAGA__DATABASE__MYSQL__HOST": "wins.internal",
    })
    assert settings.database.mysql.host == "wins.internal"
    assert settings.kafka.brokers == ["k1:9092", "k2:9092"]
    assert settings.database.mongodb.uri == "mongodb://m:27017"


def test_kafka_api_version_is_a_setting_that_defaults_to_asking_the_broker() -> None:
    assert load_settings(environ={}).kafka.api_version == "auto"
    assert load_settings(environ={}).kafka.api_version_tuple() is None
    # A number-like value in the environment is still the text a str setting expects.
    pinned = load_settings(environ={"SAGA__KAFKA__API_VERSION": "2.8"})
    assert pinned.kafka.api_version == "2.8" and pinned.kafka.api_version_tuple() == (2, 8)


def test_the_zookeeper_key_of_the_old_stack_is_refused() -> None:
    with pytest.raises(ValidationError, match="zookeeper"):
        load_settings(environ={"SAGA__KAFKA__ZOOKEEPER": "127.0.0.1:2181"})


def test_a_bundled_json_settings_file_reads_as_the_yaml_one(tmp_path: Path) -> None:
    import json

    import yaml

    from chalicelib.config import default_config_file

    bundled = tmp_path / "config.json"
    bundled.write_text(json.dumps(yaml.safe_load(default_config_file().read_text())))
    assert load_settings(bundled, environ={}) == load_settings(environ={})


def test_list_and_object_settings_come_from_json_in_the_environment() -> None:
    settings = load_settings(environ={
        "SAGA__SAGA__SUPPORTED_SAGA_TYPES": '["A", "B"]',
        "SAGA__SAGA__METADATA": '{"team": "payments"}'})
    assert settings.saga.supported_saga_types == ["A", "B"]
    assert settings.saga.metadata == {"team": "payments"}


def test_a_package_reads_the_settings_file_bundled_beside_the_code(tmp_path: Path) -> None:
    from chalicelib import config

    bundled = Path(config.__file__).parent / "configs" / "config.json"
    assert not bundled.exists()  # in a checkout, the file is configs/config.yaml
    assert config.default_config_file().parts[-2:] == ("configs", "config.yaml")
    assert config.default_config_file().parent.parent == Path(config.__file__).parent.parent


def test_a_typo_in_the_config_is_an_error_not_a_silent_default(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("database:\n  mysql:\n    prot: 3306\n")
    with pytest.raises(ValidationError, match="prot"):
        load_settings(config, environ={})


def test_bad_types_are_refused() -> None:
    with pytest.raises(ValidationError, match="port"):
        load_settings(environ={"SAGA__DATABASE__MYSQL__PORT": "not-a-port"})


def test_demo_input_defaults_never_reach_prod() -> None:
    from chalicelib.roots.step_wiring import StepContainer

    local = load_settings(environ={"SAGA_STAGE": "local"})
    prod = load_settings(environ={"SAGA_STAGE": "prod"})
    assert local.saga.demo_input_defaults["customer_id"] == "demo-customer"
    assert StepContainer(local).attempt_runner.input_defaults
    assert StepContainer(prod).attempt_runner.input_defaults == {}


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_fault_injection_and_demo_inputs_are_off_unless_a_stage_turns_them_on(stage: str) -> None:
    from chalicelib.domain.errors import BadRequest
    from chalicelib.domain.executions import Fault
    from chalicelib.domain.requests import ExecuteRequest
    from chalicelib.roots.step_wiring import StepContainer, faults_enabled
    from chalicelib.usecases.executions import ExecutionPolicy, ExecutionService
    from chalicelib.usecases.ports import Actor

    settings = load_settings(environ={"SAGA_STAGE": stage})
    assert faults_enabled(settings) is False
    assert settings.saga.demo_input_defaults == {}
    assert StepContainer(settings).attempt_runner.input_defaults == {}
    policy = ExecutionPolicy(faults_enabled=faults_enabled(settings))
    service = ExecutionService(None, None, None, policy, None)  # type: ignore[arg-type]
    with pytest.raises(BadRequest, match="fault injection is disabled"):
        service.execute("s", ExecuteRequest(faults=[Fault(step_id="a")]), Actor("ops"))


@pytest.mark.parametrize("stage", ["local", "test", "bench"])
def test_the_local_stages_turn_fault_injection_and_demo_inputs_on(stage: str) -> None:
    from chalicelib.roots.step_wiring import faults_enabled

    settings = load_settings(environ={"SAGA_STAGE": stage})
    assert faults_enabled(settings) is True
    assert settings.saga.demo_input_defaults["amount"] == "10.00"
    # The environment still wins over a stage's section.
    off = load_settings(environ={"SAGA_STAGE": stage,
                                 "SAGA__SAGA__FAULT_INJECTION_ENABLED": "false"})
    assert faults_enabled(off) is False


def test_a_stage_section_for_no_known_stage_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("stages:\n  staging:\n    saga:\n      fault_injection_enabled: true\n")
    with pytest.raises(ValueError, match="stages"):
        load_settings(config, environ={})


@pytest.mark.parametrize(("key", "value"), [
    ("MAX_FANOUT_ITEMS", "0"), ("MAX_FANOUT_ITEMS", "1001"),
    # Inline Map runs at most 40 iterations at once.
    ("MAX_FANOUT_CONCURRENCY", "0"), ("MAX_FANOUT_CONCURRENCY", "41")])
def test_fan_out_limits_out_of_their_range_are_refused(key: str, value: str) -> None:
    with pytest.raises(ValidationError, match=key.lower()):
        load_settings(environ={f"SAGA__SAGA__{key}": value})
    assert getattr(load_settings(environ={f"SAGA__SAGA__{key}": "7"}).saga, key.lower()) == 7
