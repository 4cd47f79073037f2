# The run store: what the C ABI keeps between calls, by id.

import logging
import uuid
from datetime import datetime, timezone

from runner import last_writer, settings

log = logging.getLogger("runner")


cdef str utc_now():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


cdef str new_last_id():
    """Sortable by creation time, unique by its random part; safe as a directory name."""
    return f"last_{datetime.now(timezone.utc):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:16]}"


cdef class RunStore:
    """Parsed ALT files, their task results and generated LAST files, by id.

    Every method runs under the GIL and changes the dicts in single steps, so concurrent
    callers need no further lock; generate_last works on a snapshot of the results.
    """

    cdef dict alt_files     # ALT id -> AltFile
    cdef dict results       # ALT id -> {task id -> TaskResult}
    cdef dict last_files    # LAST id -> JSON bytes

    def __cinit__(self):
        self.alt_files = {}
        self.results = {}
        self.last_files = {}

    cpdef AltFile store_alt(self, AltFile alt):
        """Keeps `alt` under its id, replacing (with its results) any file of that id."""
        replaced = alt.id in self.alt_files
        self.alt_files[alt.id] = alt
        self.results[alt.id] = {}
        log.debug("stored ALT file (%d tasks%s)", len(alt.tasks), ", replacing the previous one" if replaced else "",
                  extra={"alt_id": alt.id})
        return alt

    cpdef AltFile alt_file(self, str alt_id):
        alt = self.alt_files.get(alt_id)
        if alt is None:
            raise UnknownIdError(f"unknown ALT file '{alt_id}' (parse it first with runner_parse_alt_file)")
        return alt

    cpdef TaskResult add_result(self, str alt_id, object data):
        cdef AltFile alt = self.alt_file(alt_id)
        cdef TaskResult result = parse_task_result(data, alt)
        cdef dict results = self.results.get(alt_id)
        if results is None:
            results = self.results[alt_id] = {}
        results[result.task_id] = result
        return result

    cpdef str generate_last(self, str alt_id, object output_dir):
        """Builds the LAST record, writes <output_dir>/<last id>/last.json, returns the LAST id."""
        cdef AltFile alt = self.alt_file(alt_id)
        cdef dict results = dict(self.results.get(alt_id) or {})
        cdef str last_id = new_last_id()
        record = build_last_record(alt, results, last_id, f"exec_{uuid.uuid4().hex}", utc_now())
        data = orjson.dumps(record)
        directory = settings.output_dir(output_dir)
        try:
            path = last_writer.write_last_directory(directory, last_id, data)
        except OSError as error:
            raise LastFileError(f"cannot write the LAST file of '{alt_id}' under '{directory}': "
                                f"{error.strerror or error}") from error
        self.last_files[last_id] = data
        log.info("wrote %s (%s)", path, record["status"], extra={"alt_id": alt_id, "last_id": last_id})
        return last_id

    cpdef bytes last_json(self, str last_id):
        data = self.last_files.get(last_id)
        if data is None:
            raise UnknownIdError(f"unknown LAST file '{last_id}' (not generated since runner_init)")
        return data

    cpdef dict batch(self, list alt_ids, object output_dir):
        """ALT id -> new LAST id, or "ERROR: <message>"; one failure does not stop the rest."""
        cdef dict outcome = {}
        for alt_id in alt_ids:
            try:
                outcome[alt_id] = self.generate_last(alt_id, output_dir)
            except RunnerError as error:
                outcome[alt_id] = f"ERROR: {error}"
        return outcome

    cpdef clear(self):
        self.alt_files.clear()
        self.results.clear()
        self.last_files.clear()


STORE = RunStore()
