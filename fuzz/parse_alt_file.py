"""Fuzz target: runner_parse_alt_file. Any bytes: stored, or refused with a specific error."""
import atheris

with atheris.instrument_imports():
    from host import Host, c_string, main

HOST = None


def test_one_input(data: bytes) -> None:
    global HOST
    HOST = HOST or Host()
    HOST.tick()
    HOST.parse(c_string(data))


if __name__ == "__main__":
    main(test_one_input)
