# Ids of LAST files and executions: 36-character UUIDs, as the original runner's and the
# archive's VARCHAR(36) columns expect; version 7 (RFC 9562), so ids made later sort later
# and a directory of LAST directories lists in time order.

import os
import time


cpdef str new_uuid7():
    """A UUIDv7: 48 bits of Unix milliseconds, then 74 random bits, version and variant set."""
    cdef unsigned long long ms = <unsigned long long>time.time_ns() // 1000000
    cdef bytes noise = os.urandom(10)
    cdef const unsigned char *r = noise
    cdef unsigned char b[16]
    cdef int i
    for i in range(6):
        b[i] = (ms >> (8 * (5 - i))) & 0xFF
    b[6] = 0x70 | (r[0] & 0x0F)
    b[7] = r[1]
    b[8] = 0x80 | (r[2] & 0x3F)
    for i in range(7):
        b[9 + i] = r[3 + i]
    cdef str text = (<bytes>b[:16]).hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


