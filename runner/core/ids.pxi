# Ids of LAST files and executions: 36-character UUIDs, as the original runner's and the
# archive's VARCHAR(36) columns expect; version 7 (RFC 9562), so ids made later sort later
# and a directory of LAST directories lists in time order.

import os
import time

cdef unsigned long long last_uuid_ms = 0
cdef unsigned int last_uuid_counter = 0


cpdef str new_uuid7():
    """A UUIDv7: 48 bits of Unix milliseconds, a 12-bit counter (RFC 9562 method 1: ids made
    in one millisecond still sort in order) and 62 random bits, version and variant set."""
    global last_uuid_ms, last_uuid_counter
    cdef unsigned long long ms = <unsigned long long>time.time_ns() // 1000000
    cdef bytes noise = os.urandom(10)
    cdef const unsigned char *r = noise
    cdef unsigned char b[16]
    cdef unsigned int counter
    cdef int i
    # No Python call from here to the update: under the GIL, threads see one sequence.
    if ms > last_uuid_ms:
        counter = ((r[0] << 8) | r[1]) & 0x7FF     # a random start with room to count up
    else:
        ms = last_uuid_ms
        counter = last_uuid_counter + 1
        if counter > 0xFFF:                         # 4096 ids in one millisecond: borrow the next
            ms += 1
            counter = 0
    last_uuid_ms, last_uuid_counter = ms, counter
    for i in range(6):
        b[i] = (ms >> (8 * (5 - i))) & 0xFF
    b[6] = 0x70 | ((counter >> 8) & 0x0F)
    b[7] = counter & 0xFF
    b[8] = 0x80 | (r[2] & 0x3F)
    for i in range(7):
        b[9 + i] = r[3 + i]
    cdef str text = (<bytes>b[:16]).hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
