"""Control flow at run time: the core's ControlPlan (runner/core/control_flow.pxi) driven
by the executor's loop, as dynamic mapping.

The run's AltFile holds the tasks that are not templates (loop and function bodies), with
the dependencies the plan implies. The executor asks this Flow three things:
- intercept(index) before a task starts: a `when` or a branch guard may skip it, a loop
  whose body is the task itself expands it, and `$names` are replaced;
- begin(index, output) once a carrier's own task has completed: its construct releases
  or drops a branch's held body, or appends instances (an iteration, a call) to the run;
- poll() when groups of instances have ended: a while loop goes on, or the construct ends
  and its carrier completes (or fails) with the construct's output.
"""
from __future__ import annotations

import gc
from collections import ChainMap
from dataclasses import dataclass, field

import orjson

from runner import librunner
from runner.execution.task_types import INLINE_TYPES

SKIPPED_CONDITION = "condition false"
SKIPPED_BRANCH = "branch not taken"


class _Output:
    """What a carrier's construct reads of the carrier's own completed task."""
    status = "completed"

    def __init__(self, output):
        self.output = output


@dataclass
class _Instance:
    template: str
    scope: object                  # core Scope, None for a task of the file itself


@dataclass
class _Active:
    """A construct under way: its carrier, and the instances it waits for."""
    carrier: int
    construct: object
    output: object
    scope: object
    members: list = field(default_factory=list)      # indices of direct body instances
    iteration: int = 0
    values: list | None = None
    checked: int = 0                                 # members found complete so far
    problem: str | None = None


class Flow:
    def __init__(self, execution, alt):
        core = librunner
        self.core = core
        self.execution = execution
        self.plan = plan = alt.control
        self.max_iterations = execution.settings.max_loop_iterations
        self.max_depth = execution.settings.max_call_depth
        self.max_instances = execution.settings.max_task_instances
        self.instances_made = 0                         # by every loop and call of the run so far
        self.globals = dict(plan.variables)
        for local in plan.local.values():
            for name, value in local.items():
                self.globals.setdefault(name, value)
        self.order = {task.id: task.index for task in alt.tasks}       # file order of templates
        self.templates = {task.id: task for task in alt.tasks}
        tasks, held, special = [], [], set()
        for task in alt.tasks:
            if task.id in plan.templates:
                continue
            index = len(tasks)
            owners = set(plan.enclosing(task.id))
            deps = [d for d in list(task.dependencies) + plan.implied.get(task.id, []) if d not in owners]
            deps = list(dict.fromkeys(deps))
            tasks.append(core.task_instance(task, task.id, deps, task.description, None, None, index))
            if self._is_special(task.id):
                special.add(index)
            if self._held(task.id):
                held.append(index)
        self.run_alt = core.run_alt_file(alt, tasks)
        self.held = held
        self.special = special
        self.info: dict[int, _Instance] = {}
        self.active: dict[int, _Active] = {}            # group -> construct under way
        self.by_carrier: dict[int, int] = {}            # carrier index -> its group
        self.condition_skips: set[int] = set()
        self.mapped: set[int] = set()                   # iterations of a loop whose body is its carrier
        self.substituted: set[int] = set()              # instances whose names were replaced when made
        self.shapes: dict = {}                          # construct -> what its instances share
        self.earlier: dict = {}                         # resume: earlier results by task id
        self.results = execution.results = {}
        # A mapped task's output is the list of its instances' outputs, made when it is read
        # (the record keeps each output once: the instances', not a copy on the mapped task).
        self.gathers: dict[str, list[int]] = {}
        self.view = _ResultsView(self.results, self)

    # ---- what each task is ------------------------------------------------------------

    def _is_special(self, template: str) -> bool:
        plan = self.plan
        return (template in plan.when or template in plan.constructs or template in plan.references
                or self._guard(template) is not None)

    def _guard(self, template: str):
        """The branch written on its own members that this task is in, or None."""
        construct = self.plan.constructs.get(template)
        if construct is not None and construct.kind == "branch" and construct.member:
            return construct
        owner = self.plan.owner.get(template)
        if owner is not None and not owner.startswith("function:"):
            c = self.plan.constructs.get(owner)
            if c is not None and c.kind == "branch" and c.member:
                return c
        return None

    def _held(self, template: str) -> bool:
        """Owned by a branch that has a task of its own: it waits until that branch releases it."""
        owner = self.plan.owner.get(template)
        if owner is None or owner.startswith("function:"):
            return False
        c = self.plan.constructs.get(owner)
        return c is not None and c.kind == "branch" and not c.member

    def template_of(self, index: int) -> str:
        info = self.info.get(index)
        return info.template if info is not None else self.run_alt.tasks[index].id

    def scope_of(self, index: int):
        info = self.info.get(index)
        scope = info.scope if info is not None else None
        template = self.template_of(index)
        local = {}
        for carrier in reversed(self.plan.enclosing(template)):
            local.update(self.plan.local.get(carrier, {}))
        local.update(self.plan.local.get(template, {}))
        if local:
            return self.core.Scope(scope, local, {}, scope.prefix if scope else "", scope.suffix if scope else "",
                                   scope.depth if scope else 0, scope.control if scope else None)
        return scope

    def plain_lookup(self, variables: dict, own=None):
        """name -> value for a task with no scope but these variables over the globals."""
        core, plan, results, index = self.core, self.plan, self.view, self.templates
        names = {**self.globals, **variables}
        if own is not None:
            results = ChainMap({own[0]: _Output(own[1])}, results)

        def value_of(name: str):
            return core.resolve_name(name, None, plan, names, results, index)
        return value_of

    def lookup(self, scope, own=None):
        """name -> value in this scope. own: (task id, output) of a carrier whose construct
        starts, its result not yet written."""
        core, plan, results, index = self.core, self.plan, self.view, self.templates
        if own is not None:
            results = ChainMap({own[0]: _Output(own[1])}, results)

        def value_of(name: str):
            return core.resolve_name(name, scope, plan, self.globals, results, index)
        return value_of

    # ---- resume ---------------------------------------------------------------------------

    def resumed(self, reuse: dict, tasks: list) -> dict:
        """The executor's reuse (run index -> TaskResult) from resume's (file index ->
        TaskResult, and instance id -> earlier result dict); instances are kept for later."""
        by_id = {}
        for key, result in reuse.items():
            if isinstance(key, int):
                by_id[result.task_id] = result
            else:
                by_id[key] = result
        self.earlier = by_id
        return {task.index: by_id[task.id] for task in tasks if task.id in by_id and not isinstance(by_id[task.id], dict)}

    def reused_at_start(self) -> tuple[list, list]:
        """The earlier results this resume reuses, for its journal's first lines: the run's own
        tasks' (TaskResults) and its instances' (result dicts), all completed."""
        earlier = self.earlier.values()
        return [r for r in earlier if not isinstance(r, dict)], [r for r in earlier if isinstance(r, dict)]

    def replays(self, index: int) -> bool:
        """A reused carrier's construct runs again from its recorded output (its conditions and
        loops re-evaluated, its instances reused): True when the flow has taken it over. The
        task itself never runs again: its own work (a command, maybe) was done by the earlier
        run. False: the task's result is recorded as reused (a task guarded by a branch written
        on itself is such a task: it ran, its guard was taken)."""
        construct = self.plan.constructs.get(self.template_of(index))
        if construct is None or index in self.mapped or (construct.member and construct.kind == "branch"):
            return False
        result = self.execution.reuse.pop(index)
        if construct.member:
            self.intercept(index)      # a mapped task: it expands again (or a condition skips it)
            return True
        self.execution.finish_reused_carrier(index, result)
        return True

    def _reuse_instances(self, tasks: list) -> None:
        earlier = getattr(self, "earlier", None)
        if not earlier:
            return
        reuse = self.execution.reuse
        for task in tasks:
            old = earlier.get(task.id)
            if not isinstance(old, dict):
                continue
            control = (old.get("metadata") or {}).get("control") or {}
            if task.control is not None and control.get("value", None) != task.control.get("value", None):
                continue        # the iteration's value changed: it runs
            try:
                reuse[task.index] = self.core.task_result_from_dict(old, self.run_alt)
            except self.core.RunnerError:
                continue

    # ---- before a task starts ------------------------------------------------------------

    def intercept(self, index: int) -> bool:
        """True when the flow has decided this task's start (skipped, failed, or expanded)."""
        execution = self.execution
        template = self.template_of(index)
        scope = self.scope_of(index)
        lookup = self.lookup(scope)
        core = self.core
        try:
            mapped = index in self.mapped
            construct = self.plan.constructs.get(template)
            # A mapped task's `when` is evaluated per instance (it may read the loop
            # variable), not on the task that maps it.
            carrier_of_map = construct is not None and construct.member and construct.kind != "branch" and not mapped
            when = self.plan.when.get(template) if not carrier_of_map else None
            if when is not None and not core.evaluate_condition(when, lookup):
                self.condition_skips.add(index)
                execution.skip_by_condition(index, SKIPPED_CONDITION)
                return True
            guard = self._guard(template)
            if guard is not None:
                taken = core.evaluate_condition(guard.condition, lookup)
                if (template in guard.if_body) != bool(taken):
                    self.condition_skips.add(index)
                    execution.skip_by_condition(index, SKIPPED_BRANCH)
                    return True
            construct = self.plan.constructs.get(template)
            if construct is not None and construct.member and construct.kind != "branch" and not mapped:
                self._start_loop(index, construct, None, scope)
                return True
            if template in self.plan.references and index not in self.substituted:
                task = self.run_alt.tasks[index]
                description = core.substitute(task.description, lookup)
                parameters = core.substitute(task.parameters, lookup)
                if not isinstance(description, str):
                    description = orjson.dumps(description).decode()
                if not isinstance(parameters, dict):
                    raise core.ControlFlowError("the parameters are not an object once names are replaced")
                core.replace_task(self.run_alt, index, core.task_instance(
                    task, task.id, list(task.dependencies), description, parameters, task.control, index))
        except core.ControlFlowError as error:
            execution.fail_by_control(index, str(error))
            return True
        return False

    # ---- after a carrier's own task --------------------------------------------------------

    def has_construct(self, index: int) -> bool:
        construct = self.plan.constructs.get(self.template_of(index))
        return construct is not None and not construct.member and index not in self.mapped

    def begin(self, index: int, output) -> bool:
        """The carrier's own task completed: its construct starts. True while it runs (the
        carrier completes later, through the executor's finish_construct)."""
        template = self.template_of(index)
        construct = self.plan.constructs[template]
        scope = self.scope_of(index)
        core = self.core
        own = (self.run_alt.tasks[index].id, output)
        try:
            if construct.kind == "branch":
                taken = core.evaluate_condition(construct.condition, self.lookup(scope, own))
                return self._branch(index, construct, output, scope, bool(taken))
            if construct.kind == "call":
                return self._call(index, construct, output, scope)
            return self._start_loop(index, construct, output, scope)
        except core.ControlFlowError as error:
            self.execution.finish_construct(index, "failed", None, str(error), None)
            return True

    def carrier_unsuccessful(self, index: int) -> None:
        """A carrier failed or was skipped before its construct ran: its held body never runs."""
        template = self.template_of(index)
        construct = self.plan.constructs.get(template)
        if construct is None or construct.kind != "branch" or construct.member:
            return
        for member in construct.if_body + construct.else_body:
            target = self._index_in_scope(index, member)
            if target is not None:
                self.execution.drop_held(target, f"its branch owner '{self.run_alt.tasks[index].id}' did not run")

    def _index_in_scope(self, carrier: int, template: str):
        info = self.info.get(carrier)
        scope = info.scope if info is not None else None
        task_id = scope.instance_id(template) if scope is not None else template
        task = self.run_alt.task_index.get(task_id)
        return task.index if task is not None else None

    def _branch(self, index, construct, output, scope, taken: bool) -> bool:
        scheduler = self.execution.scheduler
        group = scheduler.new_group()
        active = _Active(index, construct, output, scope)
        self.active[group] = active
        self.by_carrier[index] = group
        chosen = construct.if_body if taken else construct.else_body
        other = construct.else_body if taken else construct.if_body
        for member in other:
            target = self._index_in_scope(index, member)
            if target is not None:
                self.condition_skips.add(target)
                self.execution.drop_held(target, SKIPPED_BRANCH, by_condition=True)
        for member in chosen:
            target = self._index_in_scope(index, member)
            if target is not None:
                active.members.append(target)
                scheduler.release(target, group)
        active.values = [("branch", "if" if taken else "else")]
        if not active.members:
            del self.active[group]
            self._end(active)
        return True

    # ---- loops ---------------------------------------------------------------------------

    def _start_loop(self, index, construct, output, scope) -> bool:
        kind = construct.kind
        lookup = self.lookup(scope, None if construct.member else (self.run_alt.tasks[index].id, output))
        active = _Active(index, construct, output, scope)
        if kind == "for_each":
            values = lookup(construct.iterable)
            if not isinstance(values, list):
                raise self.core.ControlFlowError(
                    f"for_each over '{construct.iterable}': expected an array, found {_json_type(values)} "
                    f"{self.core.shorten(values, 40)}")
        elif kind == "for_range":
            values = range(construct.start, construct.end, construct.step)
        else:
            values = None
        if values is not None and len(values) > self.max_iterations:
            self.execution.finish_construct(
                index, "failed", None,
                f"{kind} loop of {len(values)} iterations: more than RUNNER_MAX_LOOP_ITERATIONS "
                f"({self.max_iterations})", {"loop": kind, "iterations": 0})
            return True
        if values is not None and self._over_budget(index, construct, len(values), None,
                                                    {"loop": kind, "iterations": 0}):
            return True
        active.values = list(values) if values is not None else None
        group = self.execution.scheduler.new_group()
        self.active[group] = active
        self.by_carrier[index] = group
        if kind == "while":
            self._next_while(group, active)
        else:
            self._expand(group, active, list(enumerate(active.values)))
            if not active.members:
                del self.active[group]
                self._end(active)
        return True

    def _next_while(self, group, active) -> None:
        construct = active.construct
        variables = {construct.variable: active.iteration} if construct.variable else {}
        own = None if construct.member else (self.run_alt.tasks[active.carrier].id, active.output)
        if active.scope is None:
            lookup = self.plain_lookup(variables, own)
        else:
            lookup = self.lookup(self.core.Scope(active.scope, variables), own)
        try:
            go_on = self.core.evaluate_condition(construct.condition, lookup)
        except self.core.ControlFlowError as error:
            self.active.pop(group, None)
            self.execution.finish_construct(active.carrier, "failed", None, f"while condition: {error}",
                                            {"loop": "while", "iterations": active.iteration})
            return
        if not go_on:
            self.active.pop(group, None)
            self._end(active)
            return
        if active.iteration >= self.max_iterations:
            self.active.pop(group, None)
            self.execution.finish_construct(
                active.carrier, "failed", None,
                f"while loop still true after {active.iteration} iterations: stopped at "
                f"RUNNER_MAX_LOOP_ITERATIONS ({self.max_iterations})",
                {"loop": "while", "iterations": active.iteration})
            return
        if self._over_budget(active.carrier, construct, 1, None, {"loop": "while", "iterations": active.iteration}):
            self.active.pop(group, None)
            return
        before = len(active.members)
        self._expand(group, active, [(active.iteration, active.iteration)])
        active.iteration += 1
        if len(active.members) == before:       # an empty body: the condition must change by itself
            self._next_while(group, active)

    def _closure(self, construct) -> list[str]:
        """Body templates of a construct, with what branches inside them own, in file order."""
        body = [m for m in construct.all_body()]
        if construct.member:
            body = [construct.carrier]
        seen = set(body)
        queue = list(body)
        while queue:
            member = queue.pop()
            c = self.plan.constructs.get(member)
            if c is not None and c.kind == "branch" and not c.member and member not in (construct.carrier,):
                for inner in c.all_body():
                    if inner not in seen:
                        seen.add(inner)
                        queue.append(inner)
        return sorted(seen, key=lambda t: self.order[t])

    def _shape(self, construct, call_function=None):
        """What every instance of a construct's body shares, computed once: its templates in
        file order, which of them are the body proper, their dependencies inside it (by
        position), and which need the flow when they start."""
        key = (construct.carrier, call_function.name if call_function is not None else None)
        shape = self.shapes.get(key)
        if shape is not None:
            return shape
        plan = self.plan
        if call_function is not None:
            body = set(call_function.body)
            closure = self._closure_of(list(call_function.body))
        else:
            body = {construct.carrier} if construct.member else set(construct.body)
            closure = self._closure(construct)
        position = {t: k for k, t in enumerate(closure)}
        execution = self.execution
        inline_ok = not execution.plan and not execution.reuse and not getattr(self, "earlier", None)
        entries = []
        for k, template in enumerate(closure):
            source = self.templates[template]
            local = [d for d in list(source.dependencies) + plan.implied.get(template, [])
                     if d in position and d != template]
            local = list(dict.fromkeys(local))
            mapped = construct.member and call_function is None and template == construct.carrier
            special = template in plan.when or (not mapped and (self._guard(template) is not None
                                                                or template in plan.constructs))
            owner = plan.owner.get(template)
            held = template not in body and owner is not None and owner in position
            entries.append((template, source, local, [position[d] for d in local], special,
                            template in plan.references, held, template in body, mapped,
                            inline_ok and source.task_type in INLINE_TYPES, template in plan.constructs and not mapped))
        shape = self.shapes[key] = (closure, entries)
        return shape

    def _over_budget(self, carrier: int, construct, iterations: int, call_function, control: dict) -> bool:
        """Counts the instances `iterations` of the construct's body would make against the run's
        RUNNER_MAX_TASK_INSTANCES; when they would pass it, fails the construct instead (the
        run goes on to its end and its LAST file) and says so with True."""
        wanted = iterations * len(self._shape(construct, call_function)[0])
        if self.instances_made + wanted <= self.max_instances:
            self.instances_made += wanted
            return False
        self.execution.finish_construct(
            carrier, "failed", None,
            f"{wanted} more task instances would make {self.instances_made + wanted} in this run: more than "
            f"RUNNER_MAX_TASK_INSTANCES ({self.max_instances})", control)
        return True

    def _expand(self, group, active, iterations, *, call_function=None, arguments=None) -> None:
        """Appends instances of the construct's body: one per (iteration, value), or a call."""
        # Instances hold no reference cycles. With the cyclic GC on, 100k of them made in a
        # burst trigger collections that rescan the growing run again and again (measured
        # 1.6-2x slower); paused here as the core's parser and run_inline pause it.
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._make_instances(group, active, iterations, call_function, arguments)
        finally:
            if collecting:
                gc.enable()

    def _make_instances(self, group, active, iterations, call_function, arguments) -> None:
        core = self.core
        construct = active.construct
        carrier_id = self.run_alt.tasks[active.carrier].id
        scope = active.scope
        prefix = scope.prefix if scope is not None else ""
        outer_suffix = scope.suffix if scope is not None else ""
        depth = scope.depth if scope is not None else 0
        closure, entries = self._shape(construct, call_function)
        width = len(closure)
        first = start = len(self.run_alt.tasks)
        tasks, deps, inline, held = [], [], [], []
        info, special_set, substituted_set, members = self.info, self.special, self.substituted, active.members
        task_instance, substitute, Scope = core.task_instance, core.substitute, core.Scope
        if call_function is not None:
            prefix = carrier_id + "/"
            iterations = [(None, None)]
        entry = entries[0]
        plain = (scope is None and call_function is None and width == 1
                 and not (entry[4] or entry[6] or entry[10]))
        for iteration, value in iterations:
            if call_function is not None:
                suffix = outer_suffix
                variables = dict(arguments)
                control = {"call": carrier_id, "function": call_function.name}
                inner_depth = depth + 1
            else:
                suffix = f"{outer_suffix}[{iteration}]"
                variables = {construct.variable: value} if construct.variable else {}
                control = {"loop": carrier_id, "iteration": iteration, "value": value}
                inner_depth = depth
            ids = {}
            for entry in entries:
                template = entry[0]
                ids[template] = f"{carrier_id}[{iteration}]" if entry[8] else prefix + template + suffix
            # A body of one plain task at the top of the run (dynamic mapping's usual case)
            # needs no scope object: its names are the loop variable over the globals.
            inner = Scope(scope, variables, ids, prefix, suffix, inner_depth, control) if not plain else None
            lookup = None
            if plain and entries[0][5]:
                lookup = self.plain_lookup(variables)
            for k, (template, source, local, local_at, special, refs, is_held, in_body, mapped, inline_type,
                    carrier) in enumerate(entries):
                index = start + k
                # None: the instance shares its template's parameters (task_instance).
                description, parameters = source.description, None
                substituted = False
                if refs:
                    if lookup is None:
                        lookup = self.lookup(inner)
                    try:
                        description = substitute(description, lookup)
                        parameters = substitute(source.parameters, lookup)
                        if not isinstance(description, str) or not isinstance(parameters, dict):
                            raise core.ControlFlowError("")
                        substituted = True
                    except core.ControlFlowError:
                        description, parameters = source.description, None
                        special = True      # replaced when it starts (it reads a sibling's output)
                        if inner is None:
                            inner = Scope(scope, variables, ids, prefix, suffix, inner_depth, control)
                meta = dict(control)
                meta["of"] = template
                tasks.append(task_instance(source, ids[template], [ids[d] for d in local], description, parameters,
                                           meta, index))
                deps.append([start + d for d in local_at])
                held.append(is_held)
                inline.append(inline_type and not special)
                if special or carrier or is_held:
                    info[index] = _Instance(template, inner)
                    if mapped:
                        self.mapped.add(index)
                if special:
                    special_set.add(index)
                    if substituted:
                        substituted_set.add(index)
                if in_body:
                    members.append(index)
            start += width
        core.append_tasks(self.run_alt, tasks)
        self._reuse_instances(tasks)
        self.execution.scheduler.add(tasks, deps, inline, held, group)

    def _closure_of(self, body: list[str]) -> list[str]:
        seen = set(body)
        queue = list(body)
        while queue:
            member = queue.pop()
            c = self.plan.constructs.get(member)
            if c is not None and c.kind == "branch" and not c.member:
                for inner in c.all_body():
                    if inner not in seen:
                        seen.add(inner)
                        queue.append(inner)
        return sorted(seen, key=lambda t: self.order[t])

    # ---- calls ---------------------------------------------------------------------------

    def _call(self, index, construct, output, scope) -> bool:
        core = self.core
        function = self.plan.functions[construct.function]
        depth = scope.depth if scope is not None else 0
        if depth >= self.max_depth:
            self.execution.finish_construct(
                index, "failed", None,
                f"call of '{function.name}' at depth {depth + 1}: more than RUNNER_MAX_CALL_DEPTH ({self.max_depth})",
                {"call": self.run_alt.tasks[index].id, "function": function.name})
            return True
        lookup = self.lookup(scope, (self.run_alt.tasks[index].id, output))
        arguments = {}
        for name, default, required in function.parameters:
            if name in construct.arguments:
                arguments[name] = core.substitute(construct.arguments[name], lookup)
            elif not required:
                arguments[name] = default
            else:
                raise core.ControlFlowError(f"function '{function.name}' needs its argument '{name}'")
        if self._over_budget(index, construct, 1, function,
                             {"call": self.run_alt.tasks[index].id, "function": function.name}):
            return True
        active = _Active(index, construct, output, scope)
        active.values = [function]
        group = self.execution.scheduler.new_group()
        self.active[group] = active
        self.by_carrier[index] = group
        self._expand(group, active, None, call_function=function, arguments=arguments)
        if not active.members:
            del self.active[group]
            self._end(active)
        return True

    def output_of(self, task_id: str, result):
        """What reading a task's output gives: a mapped task's instances' outputs in order."""
        members = self.gathers.get(task_id)
        if members is None or result.status != "completed":
            return result.output
        tasks, results = self.run_alt.tasks, self.results
        return [results[tasks[i].id].output for i in members]

    def under_way(self) -> list[int]:
        """Carriers whose construct has not ended (an interrupted run cancels them)."""
        carriers = sorted({active.carrier for active in self.active.values()})
        self.active.clear()
        return [index for index in carriers if self.run_alt.tasks[index].id not in self.results]

    # ---- groups ended ----------------------------------------------------------------------

    def poll(self) -> bool:
        scheduler = self.execution.scheduler
        if not scheduler.done_groups:
            return False
        done, scheduler.done_groups = scheduler.done_groups, []
        for group in done:
            active = self.active.get(group)
            if active is None:
                continue
            if active.construct.kind == "while" and self._members_ok(active):
                self._next_while(group, active)
                continue
            del self.active[group]
            self._end(active)
        return True

    def _members_ok(self, active) -> bool:
        return self._first_problem(active) is None

    def _first_problem(self, active):
        """The first body instance that did not complete (one skipped by a condition did its
        part); members already looked at are not looked at again (a while loop's grow)."""
        if active.problem is not None:
            return active.problem
        tasks, results, members = self.run_alt.tasks, self.results, active.members
        for position in range(active.checked, len(members)):
            index = members[position]
            task_id = tasks[index].id
            result = results.get(task_id)
            if result is None:
                active.problem = f"'{task_id}' did not run"
            elif result.status != "completed" and not (result.status == "skipped"
                                                       and index in self.condition_skips):
                active.problem = f"'{task_id}' {_words(result.status)}"
            if active.problem is not None:
                return active.problem
        active.checked = len(members)
        return None

    def _end(self, active) -> None:
        construct = active.construct
        carrier = self.run_alt.tasks[active.carrier]
        problem = self._first_problem(active)
        kind = construct.kind
        if kind == "branch":
            meta = {"branch": active.values[0][1] if active.values else None}
        elif kind == "call":
            meta = {"call": carrier.id, "function": construct.function}
        else:
            count = active.iteration if kind == "while" else len(active.values or ())
            meta = {"loop": kind, "iterations": count}
        if problem is not None:
            what = {"branch": "branch", "call": f"call of '{construct.function}'"}.get(kind, f"{kind} loop")
            self.execution.finish_construct(active.carrier, "failed", None, f"{what}: {problem}", meta)
            return
        output = active.output
        if construct.member and kind != "branch":
            output = None
            self.gathers[carrier.id] = list(active.members)
        elif kind == "call":
            output = self._return_value(active)
            function = self.plan.functions[construct.function]
            found = self.core.type_of_value(output)
            if function.return_type != "any" and output is not None and found != function.return_type:
                self.execution.finish_construct(
                    active.carrier, "failed", None,
                    f"function '{function.name}' returns {function.return_type} (its return_type), its body's "
                    f"last segment gave {found} {self.core.shorten(output, 40)}", meta)
                return
            if construct.result_variable:
                self.globals[construct.result_variable] = output
        self.execution.finish_construct(active.carrier, "completed", output, None, meta)

    def _return_value(self, active):
        """The output of the function body's last segment in dependency order."""
        members = active.members
        if not members:
            return None
        ids = {self.run_alt.tasks[i].id: i for i in members}
        # Topological order of the body by its dependencies (file order among equals).
        order, placed = [], set()
        remaining = list(members)
        while remaining:
            progress = False
            for i in list(remaining):
                deps = [d for d in self.run_alt.tasks[i].dependencies if d in ids]
                if all(ids[d] in placed for d in deps):
                    order.append(i)
                    placed.add(i)
                    remaining.remove(i)
                    progress = True
            if not progress:
                order.extend(remaining)
                break
        return self.results[self.run_alt.tasks[order[-1]].id].output


class _ResultsView:
    """The run's results as names read them: a mapped task's output is its instances' list."""

    def __init__(self, results: dict, flow):
        self.results = results
        self.flow = flow

    def get(self, task_id, default=None):
        result = self.results.get(task_id, default)
        if result is not None and result is not default and task_id in self.flow.gathers \
                and result.status == "completed":
            return _Output(self.flow.output_of(task_id, result))
        return result

    def __contains__(self, task_id) -> bool:
        return task_id in self.results

    def __getitem__(self, task_id):
        result = self.get(task_id)
        if result is None:
            raise KeyError(task_id)
        return result


def _words(status: str) -> str:
    return {"failed": "failed", "timeout": "timed out", "cancelled": "was cancelled",
            "skipped": "was skipped"}.get(status, status)


def _json_type(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
