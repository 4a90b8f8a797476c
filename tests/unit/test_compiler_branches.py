"""Conditional and fan-out steps in the compiled machines, walked by the ASL simulator
(tests/support/asl_walk.py) over random sagas.

A saga mixes parallel groups of plain steps, fan-outs (0 to 20 items, a random tolerance,
items failing at random), callbacks (with an action, or approvals), timers, a pivot and
retriable steps after it; random steps carry a `when` whose value at run time is drawn too.
Each Task is answered by a simulation of the step runtime's decisions, made with the
domain's own rules (a false condition skips the step: a plain Task's success, a callback's or
a timer's Saga.StepSkipped; once more items failed for good than tolerated no new item
starts; gather fails past the tolerance; undo-items lists the items that may have acted; an
undo does nothing for a step that failed for good or was skipped). Every step and item that
may have taken effect before or at the pivot is compensated exactly once, in reverse group
order (a fan-out's items before the steps before it); a skipped step, a failed item and
anything after the pivot never; a fan-out within its tolerance completes. asl-validator checks
the same machines (tests/tools/test_asl_validator.py). How many sagas each property draws is
the hypothesis profile's (tests/conftest.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.adapters.stepfunctions.compiler import compile_compensation, compile_forward
from chalicelib.domain.conditions import evaluate, parse_condition
from chalicelib.domain.decisions import StepRequest, Verdict, decide
from chalicelib.domain.fanout import Tally, list_problem, split_run_id, to_undo, tolerated_count
from chalicelib.domain.lifecycle import ExecutionStatus, Phase, StepKind, StepStatus
from chalicelib.domain.mapping import Scope, resolve
from chalicelib.domain.models import SagaDefinition, Step, StepDefinition
from chalicelib.domain.validation import ValidationPolicy, validate_definition
from tests.support import asl_walk
from tests.unit.test_compiler_groups import TARGETS

MAX_ITEMS = 20
# How an action may end, by its step's kind (a timer's Tasks are the recorder's); an item is
# a plain step's run.
ENDINGS = {StepKind.CALLBACK: ["error", "timeout", "heartbeat", "callback-failed",
                               "completed-early"],
           StepKind.WAIT: ["error"]}
PLAIN_ENDINGS = ["error", "timeout", "unknown", "unknown-final"]
# What an ending leaves the run as (a callback completed while its call was out succeeded).
STATUS_AFTER = {"ok": StepStatus.SUCCEEDED, "completed-early": StepStatus.SUCCEEDED,
                "error": StepStatus.FAILED, "callback-failed": StepStatus.FAILED,
                "timeout": StepStatus.OUTCOME_UNKNOWN, "heartbeat": StepStatus.OUTCOME_UNKNOWN,
                "unknown": StepStatus.OUTCOME_UNKNOWN,
                "unknown-final": StepStatus.OUTCOME_UNKNOWN}
MAY_HAVE_ACTED = {StepStatus.SUCCEEDED, StepStatus.OUTCOME_UNKNOWN}
# Endings after which a single step's own undo runs (it may have done its work).
UNDO_ITSELF = {"timeout", "heartbeat", "unknown", "unknown-final"}


def _definition(step_id: str, order: int, shape: str, *, after_pivot: bool,
                conditional: bool, tolerated: int | str | None = None,
                max_concurrency: int | None = None) -> StepDefinition:
    """A step of the given shape: plain (compensatable, or retriable after the pivot), pivot,
    fan-out, callback, approval or wait."""
    fields: dict[str, Any] = {"id": step_id, "name": step_id.upper(),
                              "description": f"step {step_id}", "order": order}
    if conditional:
        fields["when"] = f"$.input.go.{step_id} == true"
    if shape == "wait":
        return StepDefinition(**fields, kind="wait", wait="15m")
    if shape in ("callback", "approval"):
        # A callback's action is a participant, which hands the callback on.
        action = f"lambda:do-{step_id}" if shape == "callback" else None
        return StepDefinition(**fields, kind="callback", action=action,
                              compensation=None if action is None or after_pivot
                              else f"lambda:undo-{step_id}",
                              timeout="7d", heartbeat="1m", call_timeout="10s")
    kind = ("pivot" if shape == "pivot" else "retriable" if after_pivot
            else "compensatable")
    step = StepDefinition(**fields, kind=kind, action=f"do-{step_id}",
                          compensation=None if kind == "retriable" else f"undo-{step_id}",
                          max_retries=None if kind == "retriable" else 1, timeout="10s")
    if shape == "fan-out":
        step = step.model_copy(update={"for_each": f"$.input.lines.{step_id}",
                                       "tolerated_failures": tolerated,
                                       "max_concurrency": max_concurrency,
                                       "input": {"line": "$.item"}})
    return step


@dataclass
class Saga:
    groups: list[list[Step]]
    pivot: int | None  # the pivot's group index

    @property
    def steps(self) -> list[Step]:
        return [s for group in self.groups for s in group]

    def group_of(self, run_id: str) -> int:
        """The group a step or an item ("<step id>[<index>]") runs in."""
        step_id, _ = split_run_id(run_id)
        return next(i for i, group in enumerate(self.groups) if any(s.id == step_id
                                                                    for s in group))

    def undoable(self, step: Step) -> bool:
        """Undone when a later step fails: up to the pivot, with something to undo."""
        return step.compensation is not None and (
            self.pivot is None or self.group_of(step.id) <= self.pivot)


tolerances = st.none() | st.integers(0, 5) | st.integers(0, 100).map(lambda n: f"{n}%")


@st.composite
def sagas(draw: st.DrawFn) -> Saga:
    count = draw(st.integers(1, 6))
    pivot = draw(st.none() | st.integers(0, count - 1))
    definitions: list[StepDefinition] = []
    for index in range(count):
        after = pivot is not None and index > pivot
        shape = "pivot" if index == pivot else draw(st.sampled_from(
            ["group", "callback", "approval", "wait"] + ([] if after else ["fan-out"] * 2)))
        size = draw(st.integers(1, 4)) if shape == "group" else 1
        for _ in range(size):
            definitions.append(_definition(
                f"s{len(definitions) + 1}", (index + 1) * 10, shape, after_pivot=after,
                conditional=shape != "pivot" and draw(st.booleans()),
                tolerated=draw(tolerances) if shape == "fan-out" else None,
                max_concurrency=(draw(st.none() | st.integers(1, 40)) if shape == "fan-out"
                                 else None)))
    return _saga(definitions, pivot)


def _saga(definitions: list[StepDefinition], pivot: int | None) -> Saga:
    saga = SagaDefinition(id="branches", name="Branches", version="1.0.0",
                          description="conditions and fan-outs", steps=definitions)
    # The real models and the real invariants: every saga here is one the API would store.
    assert validate_definition(saga, ValidationPolicy()) == []
    groups: list[list[Step]] = []
    for step in map(Step.of, definitions):
        if groups and groups[-1][0].order == step.order:
            groups[-1].append(step)
        else:
            groups.append([step])
    return Saga(groups, pivot)


def saga_of(shapes: list[str], *, conditional: bool) -> Saga:
    """A saga of the given groups' shapes (a "group" has two steps), every step but the
    pivot conditional or none."""
    pivot = shapes.index("pivot") if "pivot" in shapes else None
    definitions: list[StepDefinition] = []
    for index, shape in enumerate(shapes):
        for _ in range(2 if shape == "group" else 1):
            definitions.append(_definition(
                f"s{len(definitions) + 1}", (index + 1) * 10, shape,
                after_pivot=pivot is not None and index > pivot,
                conditional=conditional and shape != "pivot",
                tolerated="10%" if shape == "fan-out" else None))
    return _saga(definitions, pivot)


@dataclass
class World:
    """What the run meets: each condition's value (in the saga input), each fan-out's list
    (or something that is not a list), and how each step's and item's action ends."""

    input: dict[str, Any]
    endings: dict[str, str]  # run id (a step's, or "<id>[<index>]") -> its ending; else ok

    def runs(self, step: Step) -> bool:
        return step.when is None or self.input["go"][step.id]

    def lines(self, step: Step) -> Any:
        return self.input["lines"][step.id]

    def fails(self, step: Step) -> bool:
        """The step fails when its turn comes (skipped steps never do)."""
        if not self.runs(step):
            return False
        if step.fans_out:
            lines = self.lines(step)
            if not isinstance(lines, list):
                return True
            failed = sum(1 for i in range(len(lines)) if f"{step.id}[{i}]" in self.endings)
            return failed > tolerated_count(step.tolerated_failures, len(lines))
        return STATUS_AFTER[self.endings.get(step.id, "ok")] is not StepStatus.SUCCEEDED

    def failing(self, saga: Saga) -> int | None:
        """The first group where a step fails, or None: the run completes."""
        return next((i for i, g in enumerate(saga.groups) if any(map(self.fails, g))), None)


@st.composite
def worlds(draw: st.DrawFn, saga: Saga, *, failures: bool) -> World:
    """Conditions true or false at random; with failures, one group (or none) where a
    non-empty set of its steps fails; elsewhere every fan-out stays within its tolerance."""
    # A failing group drawn as often as each group; len(groups): none fails.
    failing = draw(st.integers(0, len(saga.groups))) if failures else None
    go = {s.id: draw(st.booleans()) for s in saga.steps if s.when is not None}
    lines: dict[str, Any] = {}
    endings: dict[str, str] = {}
    for index, group in enumerate(saga.groups):
        chosen = ({s.id for s in draw(st.lists(st.sampled_from(group), min_size=1,
                                               unique_by=lambda s: s.id))}
                  if index == failing else set())
        for step in group:
            if step.fans_out:
                count = draw(st.integers(0, MAX_ITEMS))
                tolerated = tolerated_count(step.tolerated_failures, count)
                lines[step.id] = [{"sku": f"{step.id}-{n}"} for n in range(count)]
                if step.id in chosen and (count <= tolerated or draw(st.integers(0, 3)) == 0):
                    lines[step.id] = {"not": "a list"}  # expand fails: nothing started
                    continue
                bad = draw(st.integers(tolerated + 1, count) if step.id in chosen
                           else st.integers(0, min(tolerated, count)))
                for item in draw(st.permutations(range(count)))[:bad]:
                    endings[f"{step.id}[{item}]"] = draw(st.sampled_from(PLAIN_ENDINGS))
            elif step.id in chosen:
                endings[step.id] = draw(st.sampled_from(ENDINGS.get(step.kind,
                                                                    PLAIN_ENDINGS)))
            elif step.kind is StepKind.CALLBACK and draw(st.booleans()):
                endings[step.id] = "completed-early"
    return World({"go": go, "lines": lines}, endings)


@dataclass
class Runtime:
    """The step runtime, as each Task of a walk reaches it: what it records and answers."""

    saga: Saga
    world: World
    status: dict[str, StepStatus] = field(default_factory=dict)  # run id -> status
    attempts: Counter[str] = field(default_factory=Counter)  # action attempts admitted
    delivered: Counter[str] = field(default_factory=Counter)  # action deliveries
    acted: set[str] = field(default_factory=set)  # runs whose action may have taken effect
    undone: list[str] = field(default_factory=list)  # runs whose undo ran, in order
    listed: list[tuple[str, list[int]]] = field(default_factory=list)  # undo-items' answers
    gathered: dict[str, str] = field(default_factory=dict)  # fan-out -> how gather ended
    answers: dict[str, Any] = field(default_factory=dict)  # state -> its Lambda's answer

    def step(self, step_id: str) -> Step:
        return next(s for s in self.saga.steps if s.id == split_run_id(step_id)[0])

    def outcome(self, name: str, params: dict[str, Any]) -> str:
        """How the Task ends (the machine's payload is what the Lambda parses)."""
        if "step_id" not in params:
            return "ok"  # the recorder records how the run ended
        request = StepRequest.model_validate(params)
        step = self.step(request.step_id)
        if request.fanout is not None:
            return self._fanout(name, request, step)
        if request.phase is Phase.COMPENSATION:
            return self._undo(request)
        return self._action(request, step)

    def answer(self, name: str, params: dict[str, Any]) -> Any:
        return self.answers.pop(name, None)

    def _skipped(self, step: Step) -> bool:
        """The step's condition, evaluated on its first delivery over the saga input."""
        if step.when is None:
            return False
        skipped = frozenset(r for r, s in self.status.items() if s is StepStatus.SKIPPED)
        scope = Scope(execution_id="e-1", input=self.world.input, results={},
                      skipped=skipped)
        return not evaluate(parse_condition(step.when), scope, skipped=skipped).value

    def _action(self, request: StepRequest, step: Step) -> str:
        run = request.step_id
        if request.timer == "fired":
            return "ok"
        self.delivered[run] += 1
        assert self.status.get(run, StepStatus.PENDING) is StepStatus.PENDING, \
            f"{run} delivered again once decided"
        if split_run_id(run)[1] is None and self._skipped(step):
            self.status[run] = StepStatus.SKIPPED
            # A plain Task's skip is its success; a callback's or a timer's is caught.
            return "skipped" if step.kind in (StepKind.CALLBACK, StepKind.WAIT) else "ok"
        if split_run_id(run)[1] is not None and self._tally(step).over(self._tolerated(step)):
            return "ok"  # no new item starts: it stays PENDING, and gather fails
        ending = self.world.endings.get(run, "ok")
        self.attempts[run] += 1
        self.status[run] = STATUS_AFTER[ending]
        if self.status[run] in MAY_HAVE_ACTED:
            self.acted.add(run)
        return ending

    def _items(self, step: Step) -> dict[int, str]:
        return {index: run for run in self.status
                if (index := split_run_id(run)[1]) is not None
                and split_run_id(run)[0] == step.id}

    def _tally(self, step: Step) -> Tally:
        return Tally.of(self.status[run] for run in self._items(step).values())

    def _tolerated(self, step: Step) -> int:
        return tolerated_count(step.tolerated_failures, len(self._items(step)))

    def _fanout(self, name: str, request: StepRequest, step: Step) -> str:
        if request.fanout == "expand":
            self.delivered[step.id] += 1
            if self._skipped(step):
                self.status[step.id] = StepStatus.SKIPPED
                self.answers[name] = {"items": []}
                return "ok"
            assert step.for_each is not None
            value = resolve(step.for_each, Scope(execution_id="e-1", input=self.world.input,
                                                 results={}))
            if list_problem(step.id, step.for_each, value, max_items=MAX_ITEMS):
                self.status[step.id] = StepStatus.FAILED  # PermanentError
                return "error"
            self.status[step.id] = StepStatus.RUNNING
            self.status.update({f"{step.id}[{i}]": StepStatus.PENDING
                                for i in range(len(value))})
            self.answers[name] = {"items": list(range(len(value)))}
            return "ok"
        if request.fanout == "gather":
            if self.status[step.id] is StepStatus.SKIPPED:
                self.gathered[step.id] = "skipped"
                return "ok"
            complete = self._tally(step).complete(self._tolerated(step))
            self.status[step.id] = StepStatus.SUCCEEDED if complete else StepStatus.FAILED
            self.gathered[step.id] = "ok" if complete else "fanout-failed"
            return self.gathered[step.id]
        if request.fanout == "undo-items":
            items = self._items(step)
            listed = to_undo({i: self.status[run] for i, run in items.items()},
                             {i: self.attempts[run] for i, run in items.items()},
                             skip_undone=request.skip_undone)
            self.listed.append((step.id, listed))
            self.answers[name] = {"items": listed}
            return "ok"
        assert request.fanout == "undone"
        if self.status.get(step.id) is StepStatus.SUCCEEDED:
            self.status[step.id] = StepStatus.COMPENSATED
        return "ok"

    def _undo(self, request: StepRequest) -> str:
        run = request.step_id
        decision = decide(request, self.status.get(run, StepStatus.PENDING),
                          ExecutionStatus.RUNNING)
        if decision.verdict is Verdict.RUN:
            self.undone.append(run)
            self.status[run] = StepStatus.COMPENSATED
        return "ok"

    def walk(self, machine: dict[str, Any]) -> asl_walk.Run:
        return asl_walk.walk(machine, self.outcome, answers=self.answer)


def _expected_undone(saga: Saga, runtime: Runtime) -> Counter[str]:
    """Every run (a step's, or an item's: a fan-out's own run acts through its items) that
    may have taken effect, of a step undone when a later one fails: once each."""
    return Counter({run: 1 for run in runtime.acted if saga.undoable(runtime.step(run))})


def _check_undo_order(saga: Saga, runtime: Runtime) -> None:
    """Groups undone latest first (a fan-out's items before anything earlier), and each
    fan-out's listed items undone in that order."""
    groups = [saga.group_of(run) for run in runtime.undone]
    assert groups == sorted(groups, reverse=True), runtime.undone
    for step_id, listed in runtime.listed:
        items = [run for run in runtime.undone if split_run_id(run)[0] == step_id
                 and split_run_id(run)[1] is not None]
        assert items == [f"{step_id}[{i}]" for i in listed]


def _check_items_listed(runtime: Runtime, before: dict[str, StepStatus]) -> None:
    """undo-items listed exactly the items that succeeded or whose outcome is unknown."""
    for step_id, listed in runtime.listed:
        assert listed == sorted(i for run, s in before.items()
                                if split_run_id(run)[0] == step_id
                                and (i := split_run_id(run)[1]) is not None
                                and s in MAY_HAVE_ACTED), (step_id, listed)


def _own_undo_runs(saga: Saga, world: World, group: list[Step]) -> bool:
    """Whether the failing group's own undo is where the run goes: a group of several is
    undone whatever failed in it; a fan-out whose items started, and a single step that may
    have done its work, undo themselves."""
    if not any(saga.undoable(s) for s in group):
        return False
    if len(group) > 1:
        return True
    if group[0].fans_out:
        return isinstance(world.lines(group[0]), list)
    return world.endings.get(group[0].id, "ok") in UNDO_ITSELF


@settings(deadline=None)
@given(sagas(), st.data())
def test_a_failure_anywhere_undoes_exactly_what_took_effect(saga: Saga,
                                                            data: st.DataObject) -> None:
    world = data.draw(worlds(saga, failures=True))
    runtime = Runtime(saga, world)
    statuses: dict[str, StepStatus] = {}

    def before_undo(name: str, params: dict[str, Any]) -> str:
        if params.get("phase") == "compensation" and not statuses:
            statuses.update(runtime.status)  # what the actions left, before any undo
        return runtime.outcome(name, params)

    run = asl_walk.walk(compile_forward(saga.steps, TARGETS), before_undo,
                        answers=runtime.answer)
    failing = world.failing(saga)
    ran = saga.groups if failing is None else saga.groups[:failing + 1]
    # Every step of the groups up to the failing one was delivered once, and every item of
    # each fan-out that started (an item over the tolerance is delivered and refused); none
    # after.
    expected = Counter({s.id: 1 for g in ran for s in g})
    for step in (s for g in ran for s in g if s.fans_out and world.runs(s)):
        if isinstance(world.lines(step), list):
            expected.update({f"{step.id}[{i}]": 1 for i in range(len(world.lines(step)))})
    assert runtime.delivered == expected
    # Skipped steps never ran, and were never undone.
    skipped = {s.id for g in ran for s in g if not world.runs(s)}
    assert {r for r, s in runtime.status.items() if s is StepStatus.SKIPPED} == skipped
    assert not skipped & set(runtime.undone)
    assert not skipped & runtime.acted
    if failing is None:
        assert run.end == "Completed" and not runtime.undone and not runtime.listed
        # Every fan-out that ran stayed within its tolerance and completed.
        assert all(runtime.status[s.id] is StepStatus.SUCCEEDED for s in saga.steps
                   if s.fans_out and world.runs(s))
        return
    if saga.pivot is not None and failing > saga.pivot:
        assert run.end == "Parked" and not runtime.undone and not runtime.listed
        return
    assert Counter(runtime.undone) == _expected_undone(saga, runtime)
    _check_undo_order(saga, runtime)
    _check_items_listed(runtime, statuses)
    # Nothing after the pivot is ever undone (the failing group is at or before it here).
    assert all(saga.pivot is None or saga.group_of(r) <= saga.pivot for r in runtime.undone)
    # A fan-out that succeeded and was undone is compensated once its items are.
    for step in saga.steps:
        if step.fans_out and statuses.get(step.id) is StepStatus.SUCCEEDED:
            assert runtime.status[step.id] is StepStatus.COMPENSATED
    before = any(saga.undoable(s) for g in saga.groups[:failing] for s in g)
    own = _own_undo_runs(saga, world, saga.groups[failing])
    assert run.end == ("Compensated" if before or own else "Failed")


@settings(deadline=None)
@given(sagas(), st.data())
def test_a_completed_run_is_undone_once_by_the_compensation_machine(
        saga: Saga, data: st.DataObject) -> None:
    world = data.draw(worlds(saga, failures=False))
    runtime = Runtime(saga, world)
    forward = runtime.walk(compile_forward(saga.steps, TARGETS))
    # Fan-outs within their tolerance complete, whatever their items did.
    assert forward.end == "Completed"
    for step in (s for s in saga.steps if s.fans_out):
        assert runtime.gathered[step.id] == ("ok" if world.runs(step) else "skipped")
    assert not runtime.undone
    completed = dict(runtime.status)
    undo = runtime.walk(compile_compensation(saga.steps, TARGETS))
    assert undo.end == "Compensated"
    assert Counter(runtime.undone) == _expected_undone(saga, runtime)
    # Skipped steps, failed items and anything after the pivot: never.
    assert not {r for r, s in completed.items()
                if s in (StepStatus.SKIPPED, StepStatus.FAILED)} & set(runtime.undone)
    assert all(saga.pivot is None or saga.group_of(r) <= saga.pivot for r in runtime.undone)
    _check_undo_order(saga, runtime)
    _check_items_listed(runtime, completed)
    # Every compensation Task of a compensation-only run leaves never-done steps alone.
    assert all(params.get("skip_undone") for _, params, _ in undo.tasks
               if params.get("phase") == "compensation" and params.get("fanout") != "undone")


def _order_saga(*, tolerated: int | str | None = None) -> list[Step]:
    """create; ship when the order is not digital; reserve each line (tests/e2e's order)."""
    definitions = [_definition("create", 1, "group", after_pivot=False, conditional=False),
                   _definition("ship", 2, "group", after_pivot=False, conditional=True),
                   _definition("reserve", 3, "fan-out", after_pivot=False, conditional=False,
                               tolerated=tolerated, max_concurrency=4)]
    return [Step.of(d) for d in definitions]


def _order_world(steps: list[Step], items: int, *, ship: bool,
                 endings: dict[str, str] | None = None) -> Runtime:
    groups = [[s] for s in steps]
    world = World({"go": {"ship": ship},
                   "lines": {"reserve": [{"sku": f"sku-{n}"} for n in range(items)]}},
                  endings or {})
    return Runtime(Saga(groups, None), world)


def test_a_skipped_step_costs_as_much_as_one_that_runs() -> None:
    steps = _order_saga()
    machine = compile_forward(steps, TARGETS)
    runs = [_order_world(steps, 3, ship=ship) for ship in (True, False)]
    walked = [runtime.walk(machine) for runtime in runs]
    assert [run.end for run in walked] == ["Completed", "Completed"]
    assert walked[0].visited == walked[1].visited
    assert runs[1].status["ship"] is StepStatus.SKIPPED


def test_a_fan_out_of_n_items_enters_its_map_once_and_a_task_per_item() -> None:
    for items in (0, 1, 12):
        steps = _order_saga()
        run = _order_world(steps, items, ship=True).walk(compile_forward(steps, TARGETS))
        assert run.end == "Completed"
        # create, ship, expand, the Map, an item Task each, gather, the recorder, the end.
        assert run.transitions == 2 + 3 + items + 2
        assert [p["item"] for n, p, _ in run.tasks if n == "item:reserve"] == \
            list(range(items))


def test_an_item_past_the_tolerance_stops_new_items_and_undoes_the_others_first() -> None:
    steps = _order_saga()
    runtime = _order_world(steps, 6, ship=True, endings={"reserve[3]": "error"})
    run = runtime.walk(compile_forward(steps, TARGETS))
    assert run.end == "Compensated"
    assert runtime.gathered["reserve"] == "fanout-failed"
    # Items 4 and 5 were delivered after the refusal: they stay PENDING, never undone.
    assert [runtime.status[f"reserve[{i}]"] for i in (4, 5)] == [StepStatus.PENDING] * 2
    assert runtime.undone == ["reserve[0]", "reserve[1]", "reserve[2]", "ship", "create"]
    # Within a tolerance of one, the same run completes with the failed item left alone.
    tolerant = _order_saga(tolerated=1)
    again = _order_world(tolerant, 6, ship=True, endings={"reserve[3]": "error"})
    assert again.walk(compile_forward(tolerant, TARGETS)).end == "Completed"
    again.walk(compile_compensation(tolerant, TARGETS))
    assert again.undone == [*(f"reserve[{i}]" for i in (0, 1, 2, 4, 5)), "ship", "create"]


def _maps(states: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every Map state of a machine, nested ones (a group's branches) included."""
    found: dict[str, dict[str, Any]] = {}
    for name, state in states.items():
        if state.get("Type") == "Map":
            found[name] = state
        for inner in [*state.get("Branches", []), state.get("ItemProcessor") or {}]:
            found |= _maps(inner.get("States", {}))
    return found


def test_a_fan_outs_items_are_undone_at_most_max_concurrency_at_once_as_they_ran() -> None:
    steps = _order_saga()  # reserve: max_concurrency 4
    forward = _maps(compile_forward(steps, TARGETS)["States"])
    undo = _maps(compile_compensation(steps, TARGETS)["States"])
    # The forward machine undoes a failed fan-out's items itself; the compensation machine
    # undoes a completed one's.
    assert {name.split(":")[0] for name in forward} == {"items", "undo-items"}
    assert {name.split(":")[0] for name in undo} == {"undo-items"}
    assert {m["MaxConcurrency"] for m in [*forward.values(), *undo.values()]} == {4}


def machines(saga: Saga) -> list[dict[str, Any]]:
    """The saga's forward and compensation machines (asl-validator checks them)."""
    return [compile_forward(saga.steps, TARGETS), compile_compensation(saga.steps, TARGETS)]
