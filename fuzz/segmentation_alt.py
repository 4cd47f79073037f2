"""Fuzz target: the segmentation service's ALT files (YAML, or JSON with "segments") through
runner_parse_alt_file: stored or refused with a specific error; once stored, its LAST file
is written."""
import atheris

with atheris.instrument_imports():
    import runner
    from host import Host, c_string, main

HOST = None


def test_one_input(data: bytes) -> None:
    global HOST
    HOST = HOST or Host()
    HOST.tick()
    document = c_string(data)
    if not HOST.parse(document):
        return
    alt_id = runner.parse_alt_file(document).id     # the same library: the id it stored
    HOST.generate(alt_id.encode())


if __name__ == "__main__":
    main(test_one_input)
