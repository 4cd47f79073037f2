"""Fuzz target: runner_batch_process. Input: JSON lines; a line that is an ALT file is
stored, any other line is offered as a result of the ALT file stored last. The batch of
every stored id plus an unknown one must answer each: a LAST id for a stored ALT file,
a specific "ERROR: ..." for the unknown one."""
import atheris

with atheris.instrument_imports():
    import orjson

    from host import Host, InternalError, alt_id_of, c_string, check_message, main

HOST = None
UNKNOWN = "no-such-alt-file-\u00e9"


def test_one_input(data: bytes) -> None:
    global HOST
    HOST = HOST or Host()
    HOST.tick()
    stored = []
    for line in c_string(data).split(b"\n"):
        if HOST.lib.runner_parse_alt_file(line) == 1:
            stored.append(alt_id_of(line).decode())
        elif stored:
            HOST.error()
            HOST.add(stored[-1].encode(), line)
        else:
            HOST.failed("runner_parse_alt_file")
    ids = [*dict.fromkeys(stored), UNKNOWN]
    answer = HOST.take(HOST.lib.runner_batch_process(orjson.dumps(ids), str(HOST.output).encode()))
    if answer is None:
        raise InternalError(f"runner_batch_process returned NULL for a valid id list: {HOST.error()}")
    outcome = orjson.loads(answer)
    if set(outcome) != set(ids):
        raise InternalError(f"runner_batch_process answered for {sorted(outcome)}, asked for {ids}")
    for alt_id, value in outcome.items():
        if alt_id == UNKNOWN:
            if not value.startswith("ERROR: "):
                raise InternalError(f"an unknown ALT id got {value!r}")
            check_message("runner_batch_process", value)
        elif value.startswith("ERROR"):
            raise InternalError(f"runner_batch_process refused stored ALT file {alt_id!r}: {value}")


if __name__ == "__main__":
    main(test_one_input)
