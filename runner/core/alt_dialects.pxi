# ALT dialects: the documents other ALT_LAS components write, turned into librunner's own.
#
# The segmentation service (krozenking/ALT_LAS, segmentation-service/dsl_schema.py v1.0
# and enhanced_dsl_schema.py v2.0) writes a `segments` list instead of `tasks`. Such a
# document is recognised from that content, checked in its own terms, converted into a
# native ALT document and validated by the one validator (build_alt_file). Issues that
# validator finds in the converted document are reported at the segment they come from:
# `segments[3].dependencies[0]: unknown segment 'x'`.

import hashlib
import re

SEGMENTATION_MODES = {"normal": "normal", "dream": "dream", "explore": "explore", "chaos": "chaos"}
CHAOS_LEVELS = (1, 10)
# The segment keys of the converted task's fields; the rest of a pointer follows them.
SEGMENT_KEYS = {"description": "content", "dependencies": "dependencies", "id": "id",
                "parameters": "parameters", "tags": "tags", "priority": "priority"}
TOP_LEVEL_KEYS = {"tasks": "segments", "title": "command", "description": "command"}
# The fields of the service's models (v2.0 is a superset of v1.0; alt_file_handler adds
# saved_at): any other is reported like an unknown field of a native file.
cdef tuple SEGMENTATION_FIELDS = tuple(sorted((
    "id", "version", "timestamp", "command", "language", "mode", "persona", "chaos_level", "segments",
    "metadata", "global_variables", "functions", "saved_at")))
cdef tuple SEGMENT_FIELDS = tuple(sorted((
    "id", "task_type", "content", "parameters", "dependencies", "metadata", "variables", "condition", "loop",
    "function_def", "function_call")))
cdef tuple PARAMETER_FIELDS = ("description", "name", "required", "type", "value")
# What the conversion itself adds to the native document: not the author's unknown fields.
cdef frozenset ADDED_TOP_LEVEL = frozenset(("command", "language", "timestamp", "chaos_level", "source_format",
                                            "source_document"))
cdef frozenset ADDED_TASK_FIELDS = frozenset(("segment_task_type", "metadata"))
cdef object NOUN = re.compile(r"\b(a |an |the )?task(s?)\b")


cdef bint is_segmentation_document(object doc):
    """A `segments` list and no `tasks`: the segmentation service's dialect."""
    return isinstance(doc, dict) and "segments" in <dict>doc and "tasks" not in <dict>doc


cdef AltFile build_any_alt_file(object doc, IssueList issues, AltLimits limits, IssueList warnings):
    """The AltFile of a parsed document in any dialect librunner reads; None if invalid."""
    if is_segmentation_document(doc):
        return build_segmented_alt_file(<dict>doc, issues, limits, warnings)
    return build_alt_file(doc, issues, limits, warnings)


cdef void warn_unknown(dict doc, tuple known, str path, IssueList warnings) except *:
    """An unknown field of the dialect: a warning at its dotted path, with a suggestion."""
    for key in doc:
        if key in known:
            continue
        warnings.total += 1
        if len(warnings.issues) < warnings.cap:
            where = f"{path}.{key}" if path else f"{key}"
            warnings.issues.append(ValidationIssue(where, f"unknown field{did_you_mean(str(key), known)}", doc[key]))


cdef str segment_path(Py_ssize_t index, str rest=""):
    return f"segments[{index}]{rest}"


cdef class SegmentConversion:
    """A segmentation document converted into a native ALT document, with what maps back."""

    cdef dict native
    cdef list parameter_index       # per segment: parameter name -> its index in the list
    cdef list descriptive           # per segment: its parameters describe an AI request, no task reads them
    cdef object chaos_fault_rate
    cdef ControlPlan control        # v2.0 variables, branches, loops and functions (control_flow.pxi)

    cdef void convert(self, dict doc, IssueList issues, IssueList warnings) except *:
        raw_segments = doc.get("segments")
        self.parameter_index = []
        self.descriptive = []
        self.chaos_fault_rate = None
        self.control = ControlPlan()
        cdef list tasks = []
        warn_unknown(doc, SEGMENTATION_FIELDS, "", warnings)
        if isinstance(raw_segments, list):
            for index, segment in enumerate(<list>raw_segments):
                tasks.append(self.task(segment, index, issues, warnings))
        self.native = self.header(doc, issues)
        self.native["tasks"] = tasks if isinstance(raw_segments, list) else raw_segments

    cdef dict header(self, dict doc, IssueList issues):
        cdef IssueList found = IssueList(issues.cap)
        self.control.variables.update(read_variables_list(doc.get("global_variables"), "/global_variables",
                                                          found, self.control.variable_paths))
        functions = doc.get("functions")
        if functions is not None and not isinstance(functions, list):
            found.wrong_type("/functions", "an array of functions", functions)
        elif functions:
            for k, raw in enumerate(<list>functions):
                self.add_function(read_function(raw, f"/functions/{k}", found), found)
        self.relay(found, issues)
        command = doc.get("command")
        if not isinstance(command, str):
            if "command" not in doc:
                issues.add("command", "an ALT file of segments needs a 'command', the command it was made from")
            else:
                issues.wrong_type("command", "string", command)
            command = ""
        for key in ("language", "persona", "timestamp"):
            value = doc.get(key)
            if value is not None and not isinstance(value, str):
                issues.wrong_type(key, "string", value)
        version = doc.get("version")
        if is_number(version):               # `version: 2.0` unquoted in YAML is a number
            version = f"{version}"
        elif version is not None and not isinstance(version, str):
            issues.wrong_type("version", "string", version)
            version = None
        mode = self.mode(doc, issues)
        self.chaos(doc, issues)
        metadata = doc.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            issues.wrong_type("metadata", "object", metadata)
            metadata = None
        alt_id = doc.get("id")
        if "id" not in doc:                  # the service's models always write one; derive a stable one
            alt_id = "alt_" + hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
        native = {"id": alt_id, "title": command or f"segments of ALT file {alt_id}", "description": command,
                  "mode": mode, "metadata": metadata or {}}
        # Kept in the record (metadata.alt_extra_fields of the LAST file).
        for key in ("command", "language", "timestamp", "chaos_level"):
            if doc.get(key) is not None:
                native[key] = doc[key]
        native["source_format"] = {"name": "segmentation-service", "version": version}
        native["source_document"] = doc
        if version is not None:
            native["version"] = version
        persona = doc.get("persona")
        if isinstance(persona, str):
            native["persona"] = persona
        priority = (metadata or {}).get("priority")
        if isinstance(priority, str) and priority in PRIORITY_SET:
            native["priority"] = priority
        return native

    cdef str mode(self, dict doc, IssueList issues):
        value = doc.get("mode")
        if value is None:
            return "normal"
        if isinstance(value, str) and value.strip().lower() in SEGMENTATION_MODES:
            return SEGMENTATION_MODES[value.strip().lower()]
        if isinstance(value, str):
            issues.add("mode", f"expected one of Normal, Dream, Explore, Chaos (any case), found {shorten(value)}",
                       value)
        else:
            issues.wrong_type("mode", "string", value)
        return "normal"

    cdef void chaos(self, dict doc, IssueList issues) except *:
        value = doc.get("chaos_level")
        if value is None:
            return
        if not is_integer(value) or not (CHAOS_LEVELS[0] <= value <= CHAOS_LEVELS[1]):
            issues.add("chaos_level", f"expected an integer from 1 to 10, found {shorten(value)}", value)
            return
        # Level n faults n tenths of the attempts (the runner's chaos fault rate).
        self.chaos_fault_rate = int(value) / 10.0

    cdef object task(self, object segment, Py_ssize_t index, IssueList issues, IssueList warnings):
        """One segment -> one native task (a non-object is passed on for the validator to report)."""
        cdef dict names = {}
        self.parameter_index.append(names)
        self.descriptive.append(False)
        if not isinstance(segment, dict):
            return segment
        cdef dict raw = <dict>segment
        warn_unknown(raw, SEGMENT_FIELDS, segment_path(index), warnings)
        segment_id = raw.get("id") if "id" in raw else f"segment_{index + 1}"
        label = segment_id if isinstance(segment_id, str) else f"#{index}"
        cdef IssueList found = IssueList(issues.cap)
        self.read_control(raw, index, label, found)
        self.relay(found, issues)
        kind = raw.get("task_type")
        if not isinstance(kind, str):
            if "task_type" not in raw:
                issues.add(segment_path(index), "a segment needs a 'task_type'")
            else:
                issues.wrong_type(segment_path(index, ".task_type"), "string", kind)
            kind = ""
        content = raw.get("content")
        if not isinstance(content, str):
            if "content" not in raw:
                issues.add(segment_path(index), "a segment needs a 'content', the text of its task")
            else:
                issues.wrong_type(segment_path(index, ".content"), "string", content)
            content = ""
        parameters = self.parameters(raw.get("parameters"), index, names, issues, warnings)
        mapped = (<str>kind).strip().lower()
        parameters["task_type"] = mapped if mapped in TASK_TYPE_SET else "ai_prompt"
        self.descriptive[index] = mapped not in TASK_TYPE_SET
        metadata = raw.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            issues.wrong_type(segment_path(index, ".metadata"), "object", metadata)
        return {"id": segment_id, "description": content, "parameters": parameters,
                "dependencies": raw.get("dependencies"),
                # Kept in the record (metadata.task_extra_fields of the LAST file).
                "segment_task_type": kind, "metadata": metadata if isinstance(metadata, dict) else {}}

    cdef void read_control(self, dict raw, Py_ssize_t index, str label, IssueList issues) except *:
        """A segment's v2.0 variables and construct (one of condition, loop, function_call),
        and a function_def, into the plan, at pointers the validator maps back to the segment."""
        base = f"/tasks/{index}"
        variables = raw.get("variables")
        if variables is not None and variables != []:
            local = read_variables_list(variables, base + "/variables", issues, {})
            if local:
                self.control.local[label] = local
        given = [key for key in ("condition", "loop", "function_call") if raw.get(key) is not None]
        if len(given) > 1:
            issues.add(segment_path(index, f".{given[1]}"), f"segment '{label}' has both '{given[0]}' and "
                       f"'{given[1]}': one construct per segment", raw.get(given[1]))
        elif given:
            key = given[0]
            if key == "condition":
                construct = read_branch(raw[key], label, base + "/condition", issues)
            elif key == "loop":
                construct = read_loop(raw[key], label, base + "/loop", issues, False)
            else:
                construct = read_call(raw[key], label, base + "/function_call", issues)
            add_construct(self.control, construct, issues)
        if raw.get("function_def") is not None:
            self.add_function(read_function(raw["function_def"], base + "/function_def", issues), issues)

    cdef void relay(self, IssueList found, IssueList issues) except *:
        """Issues of the control-flow readers (native pointers), pointed at the segment document."""
        for issue in found.issues:
            located = self.located(<ValidationIssue>issue)
            issues.add(located.path, located.message, located.value)
        issues.total += found.total - len(found.issues)

    cdef void add_function(self, Function f, IssueList issues) except *:
        if f is None:
            return
        if f.name in self.control.functions:
            issues.add(f.path + "/name", f"function '{f.name}' is defined twice (first at "
                       f"{(<Function>self.control.functions[f.name]).path})", f.name)
            return
        self.control.functions[f.name] = f

    cdef dict parameters(self, object raw, Py_ssize_t index, dict names, IssueList issues, IssueList warnings):
        """A segment's [{name, value, type, required, description}] -> {name: value}."""
        cdef dict out = {}
        if raw is None:
            return out
        if not isinstance(raw, list):
            issues.wrong_type(segment_path(index, ".parameters"), "an array of parameters", raw)
            return out
        for k, item in enumerate(<list>raw):
            path = segment_path(index, f".parameters[{k}]")
            if not isinstance(item, dict):
                issues.wrong_type(path, "a parameter object {name, value, ...}", item)
                continue
            warn_unknown(<dict>item, PARAMETER_FIELDS, path, warnings)
            name = (<dict>item).get("name")
            if not isinstance(name, str) or not name:
                if name is None:
                    issues.add(path, "a parameter needs a 'name'")
                else:
                    issues.wrong_type(path + ".name", "a non-empty string", name)
                continue
            if "value" not in <dict>item:
                issues.add(path, f"parameter '{name}' needs a 'value'")
                continue
            if name == "task_type":
                issues.add(path + ".name", "the parameter name 'task_type' is reserved: the segment's "
                           "task_type chooses the task type", name)
                continue
            if name in names:
                issues.add(path + ".name", f"parameter '{name}' is given twice (first at "
                           f"segments[{index}].parameters[{names[name]}])", name)
                continue
            for key, expected in (("type", "string"), ("description", "string")):
                value = (<dict>item).get(key)
                if value is not None and not isinstance(value, str):
                    issues.wrong_type(f"{path}.{key}", expected, value)
            required = (<dict>item).get("required")
            if required is not None and not (required is True or required is False):
                issues.wrong_type(path + ".required", "boolean", required)
            names[name] = k
            out[name] = (<dict>item)["value"]
        return out

    cdef bint keeps_warning(self, ValidationIssue warning):
        """Whether a native warning is the author's: not about a field the conversion added,
        nor about the parameters of a segment whose type only describes an AI request (its
        parameters are the service's record of the request, which no task type reads)."""
        parts = [pointer_unescape(token) for token in warning.path.split("/")[1:]] if warning.path else []
        if len(parts) == 1:
            return parts[0] not in ADDED_TOP_LEVEL
        if len(parts) >= 3 and parts[0] == "tasks" and parts[1].isdigit():
            index = int(parts[1])
            if len(parts) == 3 and parts[2] in ADDED_TASK_FIELDS:
                return False
            if parts[2] == "parameters" and index < len(self.descriptive) and self.descriptive[index]:
                return False
        return True

    cdef ValidationIssue located(self, ValidationIssue issue):
        """A native validator's issue, pointed at the segment document it comes from."""
        parts = [pointer_unescape(token) for token in issue.path.split("/")[1:]] if issue.path else []
        cdef str path
        if not parts:
            path = ""
        elif parts[0] == "tasks" and len(parts) > 1 and parts[1].isdigit():
            index = int(parts[1])
            path = segment_path(index)
            rest = parts[2:]
            if rest:
                key = rest[0]
                if key == "parameters" and len(rest) > 1 and index < len(self.parameter_index) \
                        and rest[1] in self.parameter_index[index]:
                    # The parameter itself (an unknown one), or a place inside its value.
                    path += f".parameters[{self.parameter_index[index][rest[1]]}]"
                    rest = rest[2:]
                    if rest:
                        path += ".value"
                else:
                    path += "." + SEGMENT_KEYS.get(key, key)
                    rest = rest[1:]
                path += "".join(f"[{token}]" if token.isdigit() else f".{token}" for token in rest)
        else:
            path = TOP_LEVEL_KEYS.get(parts[0], parts[0])
            path += "".join(f"[{token}]" if token.isdigit() else f".{token}" for token in parts[1:])
        return ValidationIssue(path, segment_words(issue.message), issue.value)


cdef str pointer_unescape(str token):
    return token.replace("~1", "/").replace("~0", "~")


cdef str segment_words(str message):
    """The validator's words for tasks, said of segments. Only the text before the first
    quote is reworded, so ids and values quoted in the message stay as they are."""
    message = re.sub(r"first used by /tasks/([0-9]+)\)", r"first used by segments[\1])", message)
    if message.startswith("dependency cycle: "):
        return message.replace("(each task waits for the next)", "(each segment waits for the next)")
    cut = min([i for i in (message.find("'"), message.find('"')) if i >= 0] or [len(message)])
    return NOUN.sub(lambda m: (m.group(1) or "") + "segment" + m.group(2), message[:cut]) + message[cut:]


cdef AltFile build_segmented_alt_file(dict doc, IssueList issues, AltLimits limits, IssueList warnings):
    """A segmentation service document -> a validated AltFile; None (issues recorded) if invalid.

    `warnings` is `issues` itself in strict mode: unknown fields are then errors."""
    cdef SegmentConversion conversion = SegmentConversion()
    conversion.convert(doc, issues, warnings)
    cdef IssueList native_issues = IssueList(max(issues.cap - len(issues.issues), 1))
    cdef IssueList native_warnings = IssueList(max(warnings.cap, 1))
    native_issues.suggestions_left = issues.suggestions_left
    control = conversion.control
    if control.is_empty():
        control = None
    else:
        control.substitutes = True
    alt = build_alt_file(conversion.native, native_issues, limits, native_warnings, control)
    for issue in native_issues.issues:
        located = conversion.located(<ValidationIssue>issue)
        issues.add(located.path, located.message, located.value)
    issues.total += native_issues.total - len(native_issues.issues)
    for warning in native_warnings.issues:
        if conversion.keeps_warning(<ValidationIssue>warning):
            located = conversion.located(<ValidationIssue>warning)
            warnings.add(located.path, located.message, located.value)
    if alt is None or issues.total:
        return None
    (<AltFile>alt).chaos_fault_rate = conversion.chaos_fault_rate
    (<AltFile>alt).warnings = warnings.issues if warnings is not issues else []
    (<AltFile>alt).warning_total = warnings.total if warnings is not issues else 0
    return alt
