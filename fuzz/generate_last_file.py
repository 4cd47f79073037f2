"""Fuzz target: runner_generate_last_file. Input: JSON lines, an ALT file then its results.
Once the ALT file is stored, its LAST file must be written whatever results were accepted."""
import atheris

with atheris.instrument_imports():
    from host import Host, alt_id_of, c_string, main

HOST = None


def test_one_input(data: bytes) -> None:
    global HOST
    HOST = HOST or Host()
    HOST.tick()
    document, *results = c_string(data).split(b"\n")
    if not HOST.parse(document):
        return
    alt_id = alt_id_of(document)
    for result in results:
        HOST.add(alt_id, result)
    HOST.generate(alt_id)


if __name__ == "__main__":
    main(test_one_input)
