/*
 * The registry of strings handed to callers.
 *
 * Every string the library returns is malloc'd here and its address recorded in an
 * open-addressing hash set. runner_free_string frees only addresses in the set, so a
 * pointer the library never handed out (ctypes' c_char_p restype passes back the address
 * of a Python copy), or one freed already, is refused instead of corrupting the heap.
 * One mutex guards the set; measured uncontended cost is a few tens of nanoseconds.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runner_internal.h"

#define EMPTY ((uintptr_t)0)
#define DELETED ((uintptr_t)1)

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static uintptr_t *slots;
static size_t capacity; /* a power of two, or 0 */
static size_t live;     /* addresses in the set */
static size_t used;     /* live + DELETED markers */

static size_t slot_of(uintptr_t key, size_t mask) {
    /* malloc'd addresses are 16-byte aligned: drop the low bits, then mix (Fibonacci hashing). */
    uint64_t h = (uint64_t)(key >> 4) * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h >> 20) & mask;
}

static int rehash(size_t new_capacity) {
    uintptr_t *fresh = calloc(new_capacity, sizeof *fresh);
    if (fresh == NULL) return 0;
    size_t mask = new_capacity - 1;
    for (size_t i = 0; i < capacity; i++) {
        uintptr_t key = slots[i];
        if (key == EMPTY || key == DELETED) continue;
        size_t j = slot_of(key, mask);
        while (fresh[j] != EMPTY) j = (j + 1) & mask;
        fresh[j] = key;
    }
    free(slots);
    slots = fresh;
    capacity = new_capacity;
    used = live;
    return 1;
}

static int insert_locked(uintptr_t key) {
    if ((used + 1) * 2 > capacity) {
        /* Rehash (dropping DELETED markers) to a load of at most 1/4. */
        size_t wanted = 64;
        while (wanted < (live + 1) * 4) wanted *= 2;
        if (!rehash(wanted)) return 0;
    }
    size_t mask = capacity - 1, j = slot_of(key, mask);
    while (slots[j] != EMPTY && slots[j] != DELETED) j = (j + 1) & mask;
    if (slots[j] == EMPTY) used++;
    slots[j] = key;
    live++;
    return 1;
}

static int remove_locked(uintptr_t key) {
    if (capacity == 0) return 0;
    size_t mask = capacity - 1, j = slot_of(key, mask);
    while (slots[j] != EMPTY) {
        if (slots[j] == key) {
            slots[j] = DELETED;
            live--;
            return 1;
        }
        j = (j + 1) & mask;
    }
    return 0;
}

char *runner_string_new(const char *data, size_t length) {
    char *copy = malloc(length + 1);
    if (copy == NULL) return NULL;
    memcpy(copy, data, length);
    copy[length] = '\0';
    pthread_mutex_lock(&registry_lock);
    int ok = insert_locked((uintptr_t)copy);
    pthread_mutex_unlock(&registry_lock);
    if (!ok) {
        free(copy);
        return NULL;
    }
    return copy;
}

int runner_string_release(char *s) {
    pthread_mutex_lock(&registry_lock);
    int known = remove_locked((uintptr_t)s);
    pthread_mutex_unlock(&registry_lock);
    if (known) free(s);
    return known;
}

size_t runner_string_release_all(void) {
    pthread_mutex_lock(&registry_lock);
    uintptr_t *old = slots;
    size_t old_capacity = capacity, count = live;
    slots = NULL;
    capacity = live = used = 0;
    pthread_mutex_unlock(&registry_lock);
    for (size_t i = 0; i < old_capacity; i++)
        if (old[i] != EMPTY && old[i] != DELETED) free((void *)old[i]);
    free(old);
    return count;
}
