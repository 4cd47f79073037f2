"""A JSON ALT file's tasks are parsed and built one at a time (parse_alt_file's streamed
build); any document it does not take, and every invalid one, is parsed whole as before.

The whole-tree parse is reached here with the same document written with its "tasks" key
escaped ("tas\\u006bs": the same key to any JSON reader, which the text scan does not take
for the tasks array): both must give the same model, or the same error, to the character.
The streamed text has 5 spaces before its key instead, so both place everything at the same
byte, line and column.
"""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings

import runner
from test_alt_property import documents, valid_documents

PLACEHOLDER = "__root_tasks_key__"
PADDED, ESCAPED = '     "tasks"', '"tas\\u006bs"'
assert len(PADDED) == len(ESCAPED)


def texts_of(doc, indent=None) -> tuple[bytes, bytes]:
    """The document as JSON text twice: with its root "tasks" key as is and escaped."""
    if isinstance(doc, dict) and "tasks" in doc:
        doc = {PLACEHOLDER if key == "tasks" else key: value for key, value in doc.items()}
    text = json.dumps(doc, indent=indent, ensure_ascii=False)
    return (text.replace(f'"{PLACEHOLDER}"', PADDED).encode(),
            text.replace(f'"{PLACEHOLDER}"', ESCAPED).encode())


def issues_of(found) -> list:
    return [(i.path, i.message, i.task_id, repr(i.value)) for i in found]


def outcome(data, **options):
    """Everything parse_alt_file says about a document, comparable."""
    try:
        alt = runner.parse_alt_file(data, **options)
    except runner.AltValidationError as error:
        return ("invalid", issues_of(error.issues), error.total, issues_of(error.warnings))
    tasks = [(t.index, t.id, t.description, t.dependencies, t.parameters, t.timeout_seconds, t.retry_count,
              t.priority, t.tags, t.status, t.extra, t.task_type) for t in alt.tasks]
    return ("valid", alt.to_dict(), tasks, list(alt.task_index), issues_of(alt.warnings), alt.warning_total,
            alt.graph.ids if alt.graph is not None else None,
            [alt.graph.dependencies_of(i) for i in range(alt.graph.size)] if alt.graph is not None else None)


def same_both_ways(doc, indent=None, **options):
    streamed, whole = texts_of(doc, indent)
    assert outcome(streamed, **options) == outcome(whole, **options)
    return outcome(streamed, **options)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_any_document_gives_what_the_whole_tree_parse_gives(doc):
    same_both_ways(doc)


@settings(max_examples=100, deadline=None)
@given(valid_documents())
def test_valid_documents_give_equal_models_indented_and_strict(doc):
    assert same_both_ways(doc, indent=2)[0] == "valid"
    same_both_ways(doc, strict=True)


def spec(count=3, **task_fields):
    return {"id": "s", "title": "streamed", "tasks": [
        {"id": f"t{i}", "description": f"task {i}", "dependencies": [f"t{i - 1}"] if i else None,
         "parameters": {"task_type": "generic", "n": i}, **task_fields} for i in range(count)]}


def test_warnings_are_ordered_and_capped_as_in_the_whole_tree():
    doc = spec(300)
    for i, task in enumerate(doc["tasks"]):
        if i % 3 == 0:
            task["x_owner"] = "team"          # an unknown field: a warning
        if i % 5 == 0:
            task["parameters"] = {"task_type": "ai_prompt", "prompt": "p", "promt": "typo"}
    doc["x_planner"] = {"budget": 1}
    found = same_both_ways(doc)
    assert found[0] == "valid" and found[5] > 100 and len(found[4]) == 100
    same_both_ways(doc, max_issues=7)
    invalid = same_both_ways(doc, strict=True)
    assert invalid[0] == "invalid" and invalid[2] == found[5]


@pytest.mark.parametrize("change", [
    lambda d: d["tasks"][1].update(id="t0"),                          # a duplicate id
    lambda d: d["tasks"][2].update(dependencies=["nope"]),            # an unknown dependency
    lambda d: d["tasks"][0].update(dependencies=["t2"]),              # a cycle
    lambda d: d["tasks"].append(7),                                   # a task that is not an object
    lambda d: d["tasks"].append([]),
    lambda d: d["tasks"][1].update(timeout_seconds=-1),
    lambda d: d.pop("title"),                                         # a header issue
    lambda d: d.update(tasks=[]),
    lambda d: d["tasks"][1]["parameters"].update(task_type="no_such_type"),
    lambda d: d["tasks"][2].update(when={"left": "$x", "operator": "==", "right": 1}),
    lambda d: d.update(variables={"x": 1}) or d["tasks"][2].update(
        when={"left": "$x", "operator": "==", "right": 1}),
])
def test_invalid_and_control_flow_documents_give_the_same_outcome(change):
    doc = spec(4)
    change(doc)
    same_both_ways(doc)


def test_more_tasks_than_the_limit_is_the_same_error():
    doc = spec(5)
    streamed, whole = texts_of(doc)
    limits = runner.AltLimits(max_tasks=4)
    assert outcome(streamed, limits=limits) == outcome(whole, limits=limits)
    assert "5 tasks, more than the limit of 4" in str(outcome(streamed, limits=limits))


def error_text(data) -> str:
    with pytest.raises(runner.AltValidationError) as caught:
        runner.parse_alt_file(data)
    return str(caught.value)


TASK = '{"id":"a","description":"x"}'
# Texts the scan splits, or half-splits, that are not valid ALT JSON as a whole: each is
# the error the whole-document parse gives (the same text with "tasks" escaped says so).
HOSTILE = [
    '{"id":"h","title":"t","tasks":[' + TASK + ' ' + TASK + ']}',                # no comma
    '{"id":"h","title":"t","tasks":[' + TASK + ',]}',                            # trailing comma
    '{"id":"h","title":"t","tasks":[,' + TASK + ']}',
    '{"id":"h","title":"t","tasks":[' + TASK + ',,' + TASK + ']}',
    '{"id":"h","title":"t","tasks":[' + TASK + '}',                              # '}' closes the array
    '{"id":"h","title":"t","tasks":[' + TASK + ']',                              # unclosed root
    '{"id":"h","title":"t","tasks":[' + TASK + ']}}',                            # one '}' too many
    '{"id":"h","title":"t","tasks":[' + TASK + ']} {"tasks":[' + TASK + ']}',    # two roots
    '{"id":"h","title":"t","tasks":[' + TASK + ']}[]',
    '{"id":"h","title":"t","tasks":[{"id":"a","id":"b"}]}',                      # a key twice in a task
    '{"id":"h","title":"t","tasks":[' + TASK + '],"tasks":[' + TASK + ']}',      # "tasks" twice
    '{"id":"h","title":"t","tasks":[' + TASK + '],"title":"again"}',             # header key twice
    '{"id":"h","title":"t","tasks":[{"id":"a","timeout_seconds":NaN}]}',
    '{"id":"h","title":"t","tasks":[{"id":"a","timeout_seconds":1e999}]}',
    '{"id":"h","title":"t","tasks":[{"id":"a","description":"\\ud800"}]}',      # a lone surrogate
    '{"id":"h","title":"t","tasks":[{"id":"a","description":"\x01"}]}',          # a raw control character
    '{"id":"h","title":"t","tasks":[{"id":"a","description":"unterminated}]}',
    '{"id":"h","title":"t","tasks":[{"id":"a"}, "tasks"]}',
    '{"id":"h","title":"t","tasks":["tasks", {"id":"a"}]}',
    '{"id":"h","title":"t","tasks":[{"id":"a"}] "x":1}',
    '{"id":"h","title":"t","tasks" [{"id":"a"}]}',
    '{"id":"h","title":"t","tasks":' + TASK + '}',                               # an object, not an array
    '{"id":"h","title":"t","tasks":"[' + TASK + ']"}',
    '{"id":"h","title":"t","tasks":[]}',
    '{"id":"h","title":"t","tasks":[ \n\t ]}',
    '[{"id":"h","title":"t","tasks":[' + TASK + ']}]',                           # the root is an array
    '{"id":"h","title":"t","tasks":[' + TASK + '],"x":' + '[' * 70 + ']' * 70 + '}',   # too deep
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_texts_give_the_whole_document_error(text):
    data = text.replace('"tasks"', PADDED).encode()
    whole = text.replace('"tasks"', ESCAPED).encode()
    assert outcome(data) == outcome(whole)
    assert outcome(data)[0] == "invalid"


@pytest.mark.parametrize("text", [
    # Strings that look like structure: quotes, brackets, commas and "tasks" inside strings.
    '{"id":"h","title":"\\"tasks\\":[",@K@:[{"id":"a","description":"],[{\\"tasks\\":[1,2]}"},'
    '{"id":"b","description":"\\\\","dependencies":["a"]}]}',
    # Whitespace everywhere the grammar allows it, and a BOM-free CRLF file.
    '\r\n {\r\n "id" : "h" ,\r\n @K@\t:\t[ \r\n {"id":"a"} \r\n , \r\n {"id":"b"}\r\n ] ,\r\n "title" : "t" } \r\n',
    # Non-ASCII, escapes and nested "tasks" keys inside tasks and the header.
    '{"id":"h","title":"ünïcødé ✓","metadata":{"tasks":[{"id":"no"}]},@K@:[{"id":"a","description":"é\\u00e9\\n",'
    '"x_more":{"tasks":[1,{"tasks":[]}]}},{"id":"b","tags":["x","é"],"parameters":{"task_type":"generic","tasks":[]}}]}',
    # Arrays and objects as tasks' values, deep (within the limit).
    '{"id":"h","title":"t",@K@:[{"id":"a","parameters":{"task_type":"generic","v":' + '[' * 40 + ']' * 40 + '}}]}',
    # A huge string and big numbers.
    '{"id":"h","title":"t",@K@:[{"id":"a","description":"' + "x" * 200_000 + '","timeout_seconds":604800,'
    '"parameters":{"task_type":"generic","n":9007199254740991,"f":-0.0,"g":1.5e300}}]}',
])
def test_tricky_valid_texts_give_the_whole_document_model(text):
    """@K@ is the root's "tasks" key."""
    data, whole = text.replace("@K@", PADDED).encode(), text.replace("@K@", ESCAPED).encode()
    assert outcome(data)[0] == "valid"
    assert outcome(data) == outcome(whole)


def test_str_input_and_yaml_give_the_model_json_gives():
    yaml = pytest.importorskip("yaml")
    doc = spec(20, tags=["x"], x_owner="team")
    doc["tasks"][3]["tags"] = []
    doc["tasks"][4]["parameters"] = {"task_type": "ai_prompt", "prompt": "p", "promt": "typo"}
    text = json.dumps(doc)
    assert outcome(text) == outcome(text.encode()) == outcome(yaml.safe_dump(doc, sort_keys=False))


def test_a_task_without_tags_or_extra_fields_shares_nothing_a_caller_can_change():
    doc = spec(3)
    doc["tasks"][2]["tags"] = ["kept"]
    doc["tasks"][2]["x_owner"] = "team"
    alt = runner.parse_alt_file(json.dumps(doc).encode())
    first, second, tagged = alt.tasks
    first.tags.append("leak")
    first.extra["leak"] = True
    assert first.tags == [] and first.extra == {} and second.tags == [] and second.extra == {}
    assert "tags" not in first.to_dict() and "leak" not in first.to_dict()
    assert first.tags is not second.tags and first.extra is not second.extra
    # Tags and fields the file gave are the task's own, as before.
    assert tagged.tags == ["kept"] and tagged.tags is tagged.tags and tagged.extra == {"x_owner": "team"}
    assert tagged.to_dict()["tags"] == ["kept"] and tagged.to_dict()["x_owner"] == "team"


def test_the_streamed_build_never_holds_the_whole_tree():
    """What the streamed build is for, and the proof that it is taken: the traced peak of a
    parse stays well under the whole-tree parse of the same document (deterministic: it
    counts allocations, not time)."""
    import gc
    import tracemalloc
    streamed, whole = texts_of(spec(20_000, x_note=None))
    peaks = []
    for data in (streamed, whole):
        gc.collect()
        tracemalloc.start()
        alt = runner.parse_alt_file(data)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert len(alt.tasks) == 20_000
        del alt
    assert peaks[0] < 0.75 * peaks[1], peaks


def test_dependencies_on_tasks_later_in_the_file_give_the_same_graph():
    """Found while building (tasks before) or at the end (tasks after): the same graph."""
    doc = {"id": "f", "title": "forward", "tasks": [
        {"id": "a", "dependencies": ["d", "b"]},
        {"id": "b", "dependencies": ["c"]},
        {"id": "c"},
        {"id": "d", "dependencies": ["c", "b"]},
        {"id": "e", "dependencies": ["a", "f", "c"]},
        {"id": "f", "dependencies": []}]}
    found = same_both_ways(doc)
    assert found[0] == "valid" and found[7] == [[3, 1], [2], [], [2, 1], [0, 5, 2], []]
    doc["tasks"][5]["dependencies"] = ["e"]        # a cycle through a later task
    assert same_both_ways(doc)[0] == "invalid"
