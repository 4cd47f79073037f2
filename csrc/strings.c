/*
 * The registry of strings handed to callers.
 *
 * Every string the library returns is malloc'd here and its address recorded in an
 * open-addressing hash set. runner_free_string frees only addresses in the set, so a
 * pointer the library never handed out (ctypes' c_char_p restype passes back the address
 * of a Python copy), or one freed already, is refused instead of corrupting the heap.
 * Measured uncontended cost is a few tens of nanoseconds per string.
 *
 * A released string is not freed at once but kept in a quarantine, the last few released
 * strings of its shard, and freed when pushed out. malloc readily hands a freed address
 * to the next allocation of that size, so without it a stale second free of `a` would
 * free the live string `b` that got a's address. The quarantine bounds what it holds by
 * count and by bytes; runner_cleanup frees it with everything else.
 */
#include <malloc.h> /* malloc_usable_size */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runner_internal.h"

#define EMPTY ((uintptr_t)0)
#define DELETED ((uintptr_t)1)
#define SHARDS 16 /* a power of two */
/* Bounds of each shard's quarantine. Whatever shards they fall in, a released string stays
 * quarantined while fewer than QUARANTINE_STRINGS strings were released after it and they
 * and it take at most QUARANTINE_BYTES in all: include/runner_ffi.h promises that much. */
#define QUARANTINE_STRINGS 64
#define QUARANTINE_BYTES ((size_t)1 << 20)

/* The recently released strings of one shard, oldest first: a FIFO ring. */
typedef struct {
    char *blocks[QUARANTINE_STRINGS];
    size_t sizes[QUARANTINE_STRINGS];
    size_t oldest; /* index of the oldest block */
    size_t count;
    size_t bytes; /* sum of sizes */
} quarantine;

/* The set is split into shards by address, each with its own lock, so that threads
 * handing out and freeing strings at once rarely wait for each other or share a cache
 * line. A string is always found in the shard its address picks, whichever thread frees it. */
typedef struct {
    int lock; /* a spinlock: held for a few dozen instructions, or one rehash */
    uintptr_t *slots;
    size_t capacity; /* a power of two, or 0 */
    size_t live;     /* addresses in the set */
    size_t used;     /* live + DELETED markers */
    quarantine released;
} __attribute__((aligned(64))) shard;

static shard shards[SHARDS];

/* One atomic exchange to lock and a plain release store to unlock: about half the cost
 * of a pthread mutex, which matters on runner_get_last_error + runner_free_string. A
 * waiter yields its CPU rather than spin against a holder that was preempted. */
static void lock_shard(shard *set) {
    for (int spins = 0; __atomic_exchange_n(&set->lock, 1, __ATOMIC_ACQUIRE); spins++) {
        while (__atomic_load_n(&set->lock, __ATOMIC_RELAXED)) {
            if (++spins >= 64) {
                sched_yield();
                spins = 0;
            } else {
#if defined(__x86_64__) || defined(__i386__)
                __builtin_ia32_pause();
#endif
            }
        }
    }
}

static void unlock_shard(shard *set) { __atomic_store_n(&set->lock, 0, __ATOMIC_RELEASE); }

static uint64_t mix(uintptr_t key) {
    /* malloc'd addresses are 16-byte aligned: drop the low bits, then mix (Fibonacci hashing). */
    return (uint64_t)(key >> 4) * UINT64_C(0x9E3779B97F4A7C15);
}

static shard *shard_of(uintptr_t key) { return &shards[mix(key) >> 60 & (SHARDS - 1)]; }

static size_t slot_of(uintptr_t key, size_t mask) { return (size_t)(mix(key) >> 20) & mask; }

static int rehash(shard *set, size_t new_capacity) {
    uintptr_t *fresh = calloc(new_capacity, sizeof *fresh);
    if (fresh == NULL) return 0;
    size_t mask = new_capacity - 1;
    for (size_t i = 0; i < set->capacity; i++) {
        uintptr_t key = set->slots[i];
        if (key == EMPTY || key == DELETED) continue;
        size_t j = slot_of(key, mask);
        while (fresh[j] != EMPTY) j = (j + 1) & mask;
        fresh[j] = key;
    }
    free(set->slots);
    set->slots = fresh;
    set->capacity = new_capacity;
    set->used = set->live;
    return 1;
}

static int insert_locked(shard *set, uintptr_t key) {
    if ((set->used + 1) * 2 > set->capacity) {
        /* Rehash (dropping DELETED markers) to a load of at most 1/4. */
        size_t wanted = 64;
        while (wanted < (set->live + 1) * 4) wanted *= 2;
        if (!rehash(set, wanted)) return 0;
    }
    size_t mask = set->capacity - 1, j = slot_of(key, mask);
    while (set->slots[j] != EMPTY && set->slots[j] != DELETED) j = (j + 1) & mask;
    if (set->slots[j] == EMPTY) set->used++;
    set->slots[j] = key;
    set->live++;
    return 1;
}

static int remove_locked(shard *set, uintptr_t key) {
    if (set->capacity == 0) return 0;
    size_t mask = set->capacity - 1, j = slot_of(key, mask);
    while (set->slots[j] != EMPTY) {
        if (set->slots[j] == key) {
            set->slots[j] = DELETED;
            set->live--;
            return 1;
        }
        j = (j + 1) & mask;
    }
    return 0;
}

/* Takes the oldest block out of the quarantine. */
static char *quarantine_pop(quarantine *q) {
    char *block = q->blocks[q->oldest];
    q->bytes -= q->sizes[q->oldest];
    q->oldest = (q->oldest + 1) % QUARANTINE_STRINGS;
    q->count--;
    return block;
}

/* Puts a released block into the quarantine. The blocks to free now (those pushed out, or
 * the block itself when it alone is over the byte bound) go to evicted: returns how many. */
static size_t quarantine_push(quarantine *q, char *block, size_t size, char *evicted[QUARANTINE_STRINGS + 1]) {
    size_t n = 0;
    if (size > QUARANTINE_BYTES) {
        evicted[n++] = block;
        return n;
    }
    while (q->count == QUARANTINE_STRINGS || q->bytes + size > QUARANTINE_BYTES) evicted[n++] = quarantine_pop(q);
    size_t slot = (q->oldest + q->count) % QUARANTINE_STRINGS;
    q->blocks[slot] = block;
    q->sizes[slot] = size;
    q->bytes += size;
    q->count++;
    return n;
}

char *runner_string_new(const char *data, size_t length) {
    char *copy = malloc(length + 1);
    if (copy == NULL) return NULL;
    memcpy(copy, data, length);
    copy[length] = '\0';
    shard *set = shard_of((uintptr_t)copy);
    lock_shard(set);
    int ok = insert_locked(set, (uintptr_t)copy);
    unlock_shard(set);
    if (!ok) {
        free(copy);
        return NULL;
    }
    return copy;
}

int runner_string_release(char *s) {
    shard *set = shard_of((uintptr_t)s);
    char *evicted[QUARANTINE_STRINGS + 1];
    size_t n_evicted = 0;
    lock_shard(set);
    int known = remove_locked(set, (uintptr_t)s);
    /* malloc_usable_size only once s is known to be ours: it reads malloc's header. */
    if (known) n_evicted = quarantine_push(&set->released, s, malloc_usable_size(s), evicted);
    unlock_shard(set);
    for (size_t i = 0; i < n_evicted; i++) free(evicted[i]); /* outside the lock: free may be slow */
    return known;
}

size_t runner_string_release_all(void) {
    size_t count = 0;
    for (size_t k = 0; k < SHARDS; k++) {
        shard *set = &shards[k];
        lock_shard(set);
        uintptr_t *old = set->slots;
        size_t old_capacity = set->capacity;
        quarantine released = set->released;
        count += set->live;
        set->slots = NULL;
        set->capacity = set->live = set->used = 0;
        set->released = (quarantine){0};
        unlock_shard(set);
        /* Freed outside the lock: a concurrent runner_free_string of one of these finds it
         * gone from the set and refuses it, so nothing is freed twice. */
        for (size_t i = 0; i < old_capacity; i++)
            if (old[i] != EMPTY && old[i] != DELETED) free((void *)old[i]);
        free(old);
        while (released.count > 0) free(quarantine_pop(&released));
    }
    return count;
}
