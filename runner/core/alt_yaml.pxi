# YAML text -> the same plain data a JSON ALT document gives, under the same limits.
#
# The segmentation service of ALT_LAS writes its ALT files as YAML by default. YAML is
# untrusted input here exactly like JSON, and it has two hazards JSON has not: tags that
# build arbitrary objects (!!python/object...) and aliases, whose expansion can grow a
# few hundred bytes into billions of values (the "billion laughs"). So the document is
# composed here from the parser's event stream, never by PyYAML's constructor:
#   - only the tags of JSON's data model (str, int, float, bool, null, seq, map) are
#     accepted, checked on the event before any value is built; timestamps stay the
#     text written (JSON has no dates);
#   - every value is counted as if aliases were expanded, so an alias bomb is refused
#     as soon as its expanded size passes RUNNER_MAX_JSON_VALUES, without expanding it
#     (an alias shares the value already built);
#   - nesting, string sizes, integer range, duplicate keys and non-finite numbers get
#     the rules JSON documents get in alt_limits.pxi.
# PyYAML is imported only when a document is YAML; libyaml's parser is used when PyYAML
# was built with it.

cdef str YAML_STR = "tag:yaml.org,2002:str"
cdef str YAML_INT = "tag:yaml.org,2002:int"
cdef str YAML_FLOAT = "tag:yaml.org,2002:float"
cdef str YAML_BOOL = "tag:yaml.org,2002:bool"
cdef str YAML_NULL = "tag:yaml.org,2002:null"
cdef str YAML_TIMESTAMP = "tag:yaml.org,2002:timestamp"
cdef str YAML_MERGE = "tag:yaml.org,2002:merge"
cdef str YAML_SEQ = "tag:yaml.org,2002:seq"
cdef str YAML_MAP = "tag:yaml.org,2002:map"
cdef object MAX_SAFE_INT = 2**53 - 1


cdef bint looks_like_yaml(bytes text):
    """Whether a document is YAML rather than JSON, from its first characters.

    JSON texts start with { [ " a digit or -digit, or are one of null/true/false; an
    empty text is (invalid) JSON. Anything else is YAML, the segmentation service's
    default format. A JSON document is never read as YAML, so JSON keeps its stricter
    rules (duplicate keys, NaN, exact integers) and its error messages.
    """
    cdef Py_ssize_t n = len(text), i = 0
    cdef unsigned char c
    if text[:3] == b"\xef\xbb\xbf":
        i = 3
    while i < n and text[i] in b" \t\r\n":
        i += 1
    if i == n:
        return False
    c = text[i]
    if c == 123 or c == 91 or c == 34 or 48 <= c <= 57:      # { [ " digit
        return False
    if c == 45 and i + 1 < n and 48 <= text[i + 1] <= 57:     # -digit
        return False
    if text[i:].rstrip() in (b"null", b"true", b"false"):
        return False
    return True


cdef object yaml_error(str message, object mark):
    if mark is not None:
        message = f"{message} (line {mark.line + 1}, column {mark.column + 1})"
    return AltValidationError([ValidationIssue("", message)])


cdef class YamlDocumentReader:
    """Builds one YAML document's data from parser events, checking every limit on the way."""

    cdef object loader           # a PyYAML (C)SafeLoader: its parser, resolver and scalar constructors
    cdef object events           # the yaml.events module
    cdef object scalar_node      # yaml.nodes.ScalarNode
    cdef dict anchors            # anchor -> (value, expanded size)
    cdef Py_ssize_t values
    cdef AltLimits limits

    def __cinit__(self, str text, AltLimits limits):
        import yaml
        import yaml.events
        import yaml.nodes
        loader_type = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
        self.loader = loader_type(text)
        self.events = yaml.events
        self.scalar_node = yaml.nodes.ScalarNode
        self.anchors = {}
        self.values = 0
        self.limits = limits

    def __dealloc__(self):
        if self.loader is not None:
            try:
                self.loader.dispose()
            except Exception:
                pass

    cdef object document(self):
        """The single document of the stream (None when the stream is empty)."""
        events = self.events
        self.loader.get_event()                          # StreamStart
        if self.loader.check_event(events.StreamEndEvent):
            return None
        self.loader.get_event()                          # DocumentStart
        value = self.node(1)
        self.loader.get_event()                          # DocumentEnd
        if not self.loader.check_event(events.StreamEndEvent):
            raise yaml_error("more than one YAML document: an ALT file is one document",
                             self.loader.peek_event().start_mark)
        return value

    cdef void count(self, Py_ssize_t size, object mark) except *:
        self.values += size
        if self.values > self.limits.max_values:
            raise yaml_error(f"more than {self.limits.max_values} values, aliases counted as expanded "
                             "(RUNNER_MAX_JSON_VALUES)", mark)

    cdef object node(self, Py_ssize_t depth):
        """The next node's value; records its anchor with its expanded size."""
        events = self.events
        event = self.loader.get_event()
        cdef Py_ssize_t before = self.values
        if isinstance(event, events.AliasEvent):
            found = self.anchors.get(event.anchor)
            if found is None:
                raise yaml_error(f"alias *{event.anchor} refers to no anchor defined before it", event.start_mark)
            self.count(found[1], event.start_mark)
            return found[0]
        if isinstance(event, events.ScalarEvent):
            self.count(1, event.start_mark)
            value = self.scalar(event)
        elif isinstance(event, events.SequenceStartEvent):
            self.open_collection(event, YAML_SEQ, depth)
            value = []
            while not self.loader.check_event(events.SequenceEndEvent):
                value.append(self.node(depth + 1))
            self.loader.get_event()
        elif isinstance(event, events.MappingStartEvent):
            self.open_collection(event, YAML_MAP, depth)
            value = self.mapping(depth)
        else:
            raise yaml_error(f"unexpected YAML event {type(event).__name__}", event.start_mark)
        if event.anchor is not None:
            self.anchors[event.anchor] = (value, self.values - before)
        return value

    cdef void open_collection(self, object event, str plain_tag, Py_ssize_t depth) except *:
        if event.tag is not None and event.tag != "!" and event.tag != plain_tag:
            raise self.refused_tag(event.tag, event.start_mark)
        if depth > self.limits.max_depth:
            raise yaml_error(f"nesting deeper than the limit of {self.limits.max_depth} "
                             "lists/mappings (RUNNER_MAX_ALT_DEPTH)", event.start_mark)
        self.count(1, event.start_mark)

    cdef dict mapping(self, Py_ssize_t depth):
        events = self.events
        cdef dict value = {}
        while not self.loader.check_event(events.MappingEndEvent):
            mark = self.loader.peek_event().start_mark
            key = self.node(depth + 1)
            if not isinstance(key, str):
                raise yaml_error(f"a mapping key must be a string, found {json_type(key)} {shorten(key)}", mark)
            if key in value:
                raise yaml_error(f"key '{key[:60]}' appears twice in this mapping: "
                                 "duplicate keys are not allowed", mark)
            value[key] = self.node(depth + 1)
        self.loader.get_event()
        return value

    cdef object scalar(self, object event):
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(self.scalar_node, event.value, event.implicit)
        cdef str text = event.value
        if tag == YAML_STR or tag == YAML_TIMESTAMP:
            if len(text) * 4 > self.limits.max_string_bytes and \
                    len(text.encode("utf-8", "surrogatepass")) > self.limits.max_string_bytes:
                raise yaml_error(f"string of {len(text.encode('utf-8', 'surrogatepass'))} bytes, more than "
                                 f"the limit of {self.limits.max_string_bytes} (RUNNER_MAX_STRING_BYTES)",
                                 event.start_mark)
            if "\x00" in text:
                raise yaml_error("string contains the NUL character, which is not allowed", event.start_mark)
            return text
        if tag == YAML_NULL:
            return None
        if tag == YAML_BOOL:
            return self.loader.construct_yaml_bool(self.scalar_node(tag, text))
        if tag == YAML_INT:
            if len(text) > 40:      # int() of a long digit string is slow, and out of range anyway
                raise yaml_error(f"integer {text[:40]} is out of range: beyond +-(2**53 - 1) "
                                 "integers are not exact in JSON", event.start_mark)
            number = self.loader.construct_yaml_int(self.scalar_node(tag, text))
            if not -MAX_SAFE_INT <= number <= MAX_SAFE_INT:
                raise yaml_error(f"integer {text[:40]} is out of range: beyond +-(2**53 - 1) "
                                 "integers are not exact in JSON", event.start_mark)
            return number
        if tag == YAML_FLOAT:
            number = self.loader.construct_yaml_float(self.scalar_node(tag, text))
            if number != number or number in (float("inf"), float("-inf")):
                raise yaml_error(f"{text} is not a finite number: JSON has no NaN or Infinity", event.start_mark)
            return number
        if tag == YAML_MERGE:
            raise yaml_error("merge keys (<<) are not supported: write the keys out", event.start_mark)
        raise self.refused_tag(tag, event.start_mark)

    cdef object refused_tag(self, str tag, object mark):
        return yaml_error(f"the YAML tag {shorten(tag, 80)} is not allowed: an ALT file holds only strings, "
                          "numbers, booleans, null, lists and mappings", mark)


cdef object load_yaml_document(bytes text, AltLimits limits):
    """A YAML ALT document as plain data; AltValidationError for anything unsafe or invalid."""
    if len(text) > limits.max_bytes:
        raise AltValidationError([ValidationIssue(
            "", f"document is {len(text)} bytes, more than the limit of {limits.max_bytes} (RUNNER_MAX_ALT_BYTES)")])
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as error:
        raise AltValidationError([ValidationIssue("", f"invalid YAML: not valid UTF-8 (byte {error.start})")])
    import yaml
    cdef YamlDocumentReader reader = YamlDocumentReader(decoded, limits)
    try:
        return reader.document()
    except yaml.MarkedYAMLError as error:
        raise yaml_error(f"invalid YAML: {error.problem or error.context}", error.problem_mark) from None
    except yaml.YAMLError as error:
        raise yaml_error(f"invalid YAML: {error}", None) from None
    except RecursionError:
        raise yaml_error(f"nesting too deep for this reader (RUNNER_MAX_ALT_DEPTH={limits.max_depth})", None) from None
