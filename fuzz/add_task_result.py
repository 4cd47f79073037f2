"""Fuzz target: runner_add_task_result. The first byte picks one of the seed ALT files, the
rest is the result: stored, or refused with a specific error; and a stored result must not
make the LAST file unwritable (the ALT file's LAST file is generated after each input)."""
import atheris

with atheris.instrument_imports():
    from corpus import alt_documents
    from host import Host, alt_id_of, c_string, main

HOST = None
ALT_IDS: list = []


def _store_alt_files() -> None:
    ALT_IDS.clear()
    for document in alt_documents():
        if HOST.parse(document):
            ALT_IDS.append(alt_id_of(document))


def test_one_input(data: bytes) -> None:
    global HOST
    if HOST is None:
        HOST = Host()
        _store_alt_files()
    if HOST.tick():
        _store_alt_files()
    if not data:
        return
    alt_id = ALT_IDS[data[0] % len(ALT_IDS)]
    if HOST.add(alt_id, c_string(data[1:])):
        HOST.generate(alt_id)


if __name__ == "__main__":
    main(test_one_input)
