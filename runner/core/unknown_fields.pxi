# Unknown fields: a field the model does not know is kept (ALT_LAS producers add their own)
# but reported as a warning, with the field it most likely meant. RUNNER_STRICT=true (or
# strict=True) makes these warnings errors.
#
# Only files that have unknown fields pay for this: the parser finds them while it reads
# the known ones, and messages (and difflib) are built only for warnings that are kept.

from runner import settings

# Names people write for a field, with the field they mean. Tried before difflib, which
# cannot see that "retries" means "retry_count".
cdef dict FIELD_ALIASES = {
    "depends_on": "dependencies", "depends": "dependencies", "deps": "dependencies",
    "dependency": "dependencies", "requires": "dependencies", "needs": "dependencies",
    "after": "dependencies", "dependson": "dependencies",
    "timeout": "timeout_seconds", "timeout_s": "timeout_seconds", "timeout_sec": "timeout_seconds",
    "timeout_secs": "timeout_seconds", "timeout_ms": "timeout_seconds", "time_limit": "timeout_seconds",
    "retries": "retry_count", "retry": "retry_count", "max_retries": "retry_count",
    "retry_times": "retry_count", "attempts": "retry_count", "retrys": "retry_count",
    "name": "title", "execution_mode": "mode", "label": "tags", "labels": "tags",
    "type": "task_type", "kind": "task_type", "tasktype": "task_type",
    "op": "operation", "action": "operation", "file": "path", "filename": "path",
    "cmd": "command", "argv": "command", "args": "command",
    "ops": "operations", "steps": "operations", "pipeline": "operations",
    "data": "input", "from": "input_from", "source": "input_from",
    "text": "prompt", "message": "prompt", "template": "prompt",
    "samples": "explore_samples", "n": "explore_samples",
    "operator": "cmp", "comparison": "cmp", "compare": "cmp",
    "fn": "function", "func": "function", "key": "by", "field_name": "field",
    "sort_by": "by", "group": "by", "reverse": "descending", "desc": "descending",
}

# Parameters sometimes written on the task itself instead of inside "parameters".
cdef frozenset PARAMETER_NAMES_ON_TASK = frozenset((
    "task_type", "type", "prompt", "model", "command", "operation", "operations", "path",
    "content", "input", "input_from", "temperature",
))

cdef tuple ALT_FIELD_NAMES = tuple(sorted(ALT_FIELDS | CONTROL_ALT_FIELDS))
cdef tuple TASK_FIELD_NAMES = tuple(sorted(TASK_FIELDS | CONTROL_TASK_FIELDS))
cdef frozenset KNOWN_ALT_FIELDS = ALT_FIELDS | CONTROL_ALT_FIELDS
cdef frozenset KNOWN_TASK_FIELDS = TASK_FIELDS | CONTROL_TASK_FIELDS


cdef str did_you_mean(str key, tuple known):
    """' (did you mean 'x'?)' for the known name `key` most likely stands for, or ''."""
    lowered = key.lower()
    target = FIELD_ALIASES.get(lowered)
    if target is not None and target in known:
        return f" (did you mean '{target}'?)"
    for name in known:
        if (<str>name).lower() == lowered:
            return f" (did you mean '{name}'?)"
    match = difflib.get_close_matches(lowered, known, n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


cdef void report_unknown_fields(dict doc, object known_set, tuple known, str base, IssueList warnings,
                                str what="field"):
    """One warning per key of `doc` outside `known_set`, at base/key, with a suggestion."""
    for key in doc:
        if key in known_set:
            continue
        warnings.total += 1
        if len(warnings.issues) >= warnings.cap:
            continue
        hint = did_you_mean(key, known)
        if not hint and what == "field" and known is TASK_FIELD_NAMES and key in PARAMETER_NAMES_ON_TASK:
            name = "task_type" if key == "type" else key
            hint = f" (did you mean 'parameters.{name}'?)"
        warnings.issues.append(ValidationIssue(f"{base}/{pointer_token(key)}", f"unknown {what}{hint}", doc[key]))


cdef IssueList result_warnings(TaskResult result):
    """Warnings for the fields of a task result the record does not know (up to a cap,
    all of them counted)."""
    cdef IssueList warnings = IssueList()
    if result.stored_extra:
        report_unknown_fields(result.stored_extra, RESULT_FIELDS, tuple(sorted(RESULT_FIELDS)),
                              f"/task_results/{pointer_token(result.task_id)}", warnings)
    return warnings


cdef bint strict_from_environment() except -1:
    """RUNNER_STRICT: unknown fields and parameters are errors instead of warnings."""
    return settings.flag("RUNNER_STRICT")     # ConfigurationError for a value that is not a flag
