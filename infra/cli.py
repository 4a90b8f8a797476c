"""`saga`: the command line for the local stack and the service."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from chalicelib.config import get_settings
from infra.cli_service import add_commands as add_service_commands
from infra.exit_codes import Exit, exit_codes_help
from infra.stack.process import StackError
from infra.stack.supervisor import Supervisor


def _stack(args: argparse.Namespace) -> int:
    supervisor = Supervisor(get_settings())
    if args.action == "up":
        supervisor.up(args.servers)
        return Exit.OK
    if args.action == "down":
        if not supervisor.down(args.servers):
            print("nothing was running")
        return Exit.OK
    if args.action == "status":
        statuses = supervisor.status(args.servers)
        if args.json:
            print(json.dumps([status.__dict__ for status in statuses], indent=2))
        else:
            for status in statuses:
                print(status.line())
        return Exit.OK if all(s.state == "healthy" for s in statuses) else Exit.UNAVAILABLE
    if args.action == "logs":
        names = args.servers or [server.name for server in supervisor.servers]
        if args.follow:
            logs = [str(supervisor.paths.log(name)) for name in names]
            os.execvp("tail", ["tail", "-n", str(args.lines), "-F", *logs])
        for name in names:
            print(f"==> {name} <==\n{supervisor.tail(name, args.lines)}")
        return Exit.OK
    raise AssertionError(args.action)


def _serve(args: argparse.Namespace) -> int:
    from chalicelib.roots import runtime
    from infra.deploy.local import load_app
    from infra.local_api import create_server
    from infra.local_events import EventWorkers
    from infra.local_schedule import cleanup_timer
    from infra.ws_gateway import LocalWebsocketGateway

    settings = get_settings()
    runtime.container().ensure_schema()  # before the relay reads the outbox
    server = create_server("127.0.0.1", args.port, args.stage)
    workers = EventWorkers.start() if not args.no_events else None
    cleaner = cleanup_timer(settings).start()
    gateway = LocalWebsocketGateway(
        load_app(), stage=args.stage, ws_port=settings.websocket.port,
        management_port=urlsplit(settings.websocket.management_endpoint).port or 8002).start()
    # SIGTERM (e.g. from a supervisor) stops the server as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    print(f"serving the API on http://127.0.0.1:{args.port} (stage {args.stage}; the console "
          f"at /console), WebSockets "
          f"on ws://127.0.0.1:{gateway.ws_port}/ws; "
          + ("relay and projector running; " if workers else "") + "Ctrl-C stops it",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server.server_close()
        gateway.stop()
        cleaner.stop()
        if workers is not None:
            workers.stop()
        runtime.container().close()  # its pools and clients, once nothing uses them
    return Exit.OK


def _events(args: argparse.Namespace) -> int:
    from chalicelib.roots import runtime
    from infra.local_events import rebuild_read_model

    if args.action == "relay":
        published = runtime.container().relay.drain()
        print(f"published {published} event(s)")
    elif args.action == "dead-letters":
        return _dead_letters(args.replay)
    else:
        applied = rebuild_read_model()
        print(f"read model rebuilt from the outbox: {applied} event(s) applied")
    return Exit.OK


def _dead_letters(replay: int | None) -> int:
    from chalicelib.adapters.mysql.dead_letters import RELAY
    from chalicelib.roots import runtime

    letters = runtime.container().dead_letters
    if replay is None:
        rows = letters.list()
        print(f"{'id':>6}  {'when (UTC)':<26}  {'stage':<9}  {'event key':<40}  reason")
        for letter in rows:
            print(f"{letter.id:>6}  {letter.created_at.isoformat():<26}  {letter.stage:<9}  "
                  f"{(letter.event_key or '-'):<40}  {letter.reason[:200]}")
        print(f"{len(rows)} dead letter(s) waiting")
        return Exit.OK
    letter = letters.get(replay)
    if letter is None or letter.replayed_at is not None:
        print(f"no dead letter {replay} waiting for a replay", file=sys.stderr)
        return Exit.FAILED
    if letter.stage == RELAY:
        letters.requeue_to_outbox(letter)
        print(f"dead letter {replay}: event back in the outbox; the relay publishes it next")
        return Exit.OK
    event = letter.event()
    try:
        if event is None:
            raise ValueError("the stored envelope is not a JSON object")
        runtime.container().projector.apply(event)
    except Exception as error:  # the operator sees why, the letter stays for another try
        print(f"dead letter {replay}: replay failed: {type(error).__name__}: {error}",
              file=sys.stderr)
        return Exit.FAILED
    letters.mark_replayed(letter.id)
    print(f"dead letter {replay}: event re-projected")
    return Exit.OK


def _openapi(args: argparse.Namespace) -> int:
    """The committed contracts: the API's OpenAPI document and the participant request's
    JSON Schema, both generated from the code."""
    from chalicelib.domain.contract import CONTRACT_SCHEMA_FILE, request_schema
    from chalicelib.http.openapi import OPENAPI_FILE, build_document
    from infra.deploy.local import load_app

    # The paths are the app's own routes.
    documents = {OPENAPI_FILE: build_document(get_settings().saga, load_app().routes),
                 CONTRACT_SCHEMA_FILE: request_schema()}
    stale = []
    for path, document in documents.items():
        text = json.dumps(document, indent=2) + "\n"
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path.name)
            continue
        path.write_text(text)
        print(f"wrote {path}")
    if stale:
        print(f"{', '.join(stale)} stale: run `saga openapi`", file=sys.stderr)
        return Exit.FAILED
    return Exit.OK


def _package(args: argparse.Namespace) -> int:
    from infra.deploy.aws import package

    template = package(args.stage, Path(args.out).resolve(), region=get_settings().aws.region,
                       with_dependencies=not args.no_dependencies)
    print(f"wrote {template} and its deployment package beside it")
    return Exit.OK


def _reconcile(args: argparse.Namespace) -> int:
    from chalicelib.roots import runtime

    reconciler = runtime.container().new_reconciler(grace_seconds=args.older_than)
    repairs = reconciler.run(limit=args.limit)
    if args.json:
        print(json.dumps([{**r.__dict__, "was": r.was.value, "now": r.now.value}
                          for r in repairs], indent=2))
    else:
        for r in repairs:
            print(f"{r.execution_id}: {r.was.value} -> {r.now.value} ({r.reason})")
        print(f"{len(repairs)} execution(s) repaired")
    return Exit.OK


def _db(args: argparse.Namespace) -> int:
    from chalicelib.adapters.mysql.connector import connect
    from chalicelib.adapters.mysql.migrate import migrate

    conn = connect(get_settings().database.mysql)
    try:
        names = migrate(conn)
    finally:
        conn.close()
    print("applied: " + ", ".join(names) if names else "the schema is up to date")
    return Exit.OK


def _deploy(args: argparse.Namespace) -> int:
    from infra.deploy.cloudformation import DeployError

    try:
        if args.stage in ("dev", "prod"):
            return _deploy_to_aws(args)
        return _deploy_locally()
    except DeployError as error:
        print(f"saga: deploy failed: {error}", file=sys.stderr)
        return Exit.FAILED


def _deploy_to_aws(args: argparse.Namespace) -> int:
    import boto3

    from infra.deploy.aws import (
        REQUIRED_PARAMETERS,
        deploy_aws,
        deploy_region,
        read_parameters,
        with_network,
    )

    if boto3.session.Session().get_credentials() is None:
        print(f"saga: no AWS credentials found for stage {args.stage}: set AWS_PROFILE, or "
              "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run on a machine with a "
              "role; `saga deploy --stage local` needs none", file=sys.stderr)
        return Exit.REFUSED
    if args.parameters is None:
        print(f"saga: stage {args.stage} needs --parameters FILE, a JSON object with "
              f"{', '.join(REQUIRED_PARAMETERS)} (see README)", file=sys.stderr)
        return Exit.REFUSED
    try:
        parameters = with_network(read_parameters(args.parameters), subnet_ids=args.subnet_ids,
                                  security_group_ids=args.security_group_ids)
        region = deploy_region(args.region, os.environ, boto3.session.Session().region_name)
    except ValueError as error:
        print(f"saga: {error}", file=sys.stderr)
        return Exit.REFUSED
    result = deploy_aws(args.stage, parameters, region=region,
                        say=lambda line: print(line, flush=True))
    for key in ("RestApiUrl", "WebsocketUrl"):
        print(f"{key}: {result.outputs.get(key, '-')}")
    return Exit.OK


def _deploy_locally() -> int:
    from chalicelib.roots import runtime
    from infra.deploy.local import deploy_local, gateway_url, refresh_machines, seed_demo_data

    settings = get_settings()
    result = deploy_local(settings, say=lambda line: print(line, flush=True))
    print(f"REST API through LocalStack's API Gateway: {gateway_url(settings, result.outputs)}")
    parts = runtime.container()  # its MySQL pool migrates the schema first
    refresh_machines(parts.definition_service, parts.engine, print)
    seed_demo_data(parts.connector)
    return Exit.OK


def _version() -> str:
    """The installed package's version (the service's is in GET /health)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("saga-orchestrator")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="saga", description=__doc__, epilog=exit_codes_help(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"saga {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    stack = commands.add_parser("stack", help="the local servers: MariaDB, MongoDB, Kafka "
                                "(KRaft), LocalStack")
    stack.add_argument("action", choices=["up", "down", "status", "logs"])
    stack.add_argument("servers", nargs="*", help="only these servers (default: all)")
    stack.add_argument("--json", action="store_true", help="status as JSON")
    stack.add_argument("-n", "--lines", type=int, default=50, help="log lines to show")
    stack.add_argument("-f", "--follow", action="store_true", help="follow the logs")
    stack.set_defaults(handler=_stack)

    serve = commands.add_parser("serve", help="serve the API on 127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--stage", default="local")
    serve.add_argument("--no-events", action="store_true",
                       help="do not run the outbox relay and the projector in this process")
    serve.set_defaults(handler=_serve)

    events = commands.add_parser("events", help="the event pipeline")
    events.add_argument("action", choices=["relay", "rebuild", "dead-letters"],
                        help="relay: publish what the outbox holds now; rebuild: the MongoDB "
                        "read model from scratch, from the outbox history; dead-letters: "
                        "list the events the pipeline gave up on")
    events.add_argument("--replay", type=int, metavar="ID",
                        help="with dead-letters: replay one (back to the outbox, or "
                        "re-projected)")
    events.set_defaults(handler=_events)

    openapi = commands.add_parser("openapi", help="write chalicelib/http/openapi.json and the "
                                  "participant contract's JSON Schema")
    openapi.add_argument("--check", action="store_true", help="fail if it is stale")
    openapi.set_defaults(handler=_openapi)

    deploy = commands.add_parser("deploy", help="create or update a stage's stack")
    deploy.add_argument("--stage", default="local", choices=["local", "dev", "prod"])
    deploy.add_argument("--parameters", type=Path, default=None,
                        help="dev/prod: JSON file of the stack's parameters (secrets, brokers)")
    deploy.add_argument("--region", default=None, help="dev/prod: AWS region (default: "
                        "AWS_REGION, else AWS_DEFAULT_REGION or the profile's region)")
    deploy.add_argument("--subnet-ids", default=None, metavar="ID,ID...",
                        help="dev/prod: run the Lambdas in a VPC, in these subnets (with "
                        "--security-group-ids; the stack parameter SubnetIds, else the "
                        "parameters file's; neither: no VPC)")
    deploy.add_argument("--security-group-ids", default=None, metavar="ID,ID...",
                        help="dev/prod: the Lambdas' security groups in the VPC (with "
                        "--subnet-ids; the stack parameter SecurityGroupIds)")
    deploy.set_defaults(handler=_deploy)

    package = commands.add_parser(
        "package", help="the SAM template and deployment package of an AWS stage")
    package.add_argument("--stage", default="prod", choices=["dev", "prod"])
    package.add_argument("--out", default=".stack/build/aws", help="output folder")
    package.add_argument("--no-dependencies", action="store_true",
                         help="leave the dependencies out (to check the template only)")
    package.set_defaults(handler=_package)

    reconcile = commands.add_parser(
        "reconcile", help="repair executions left RUNNING whose state machine run ended")
    reconcile.add_argument("--older-than", type=float, default=None, metavar="SECONDS",
                           help="look at executions this long past the moment they were "
                                "next expected to move (default: config)")
    reconcile.add_argument("--limit", type=int, default=500)
    reconcile.add_argument("--json", action="store_true")
    reconcile.set_defaults(handler=_reconcile)

    add_service_commands(commands)

    db = commands.add_parser("db", help="the MySQL write model")
    db.add_argument("action", choices=["migrate"])
    db.set_defaults(handler=_db)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except StackError as error:
        print(f"saga: {error}", file=sys.stderr)
        return Exit.FAILED
    except KeyboardInterrupt:
        return Exit.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
