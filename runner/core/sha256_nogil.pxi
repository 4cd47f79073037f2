# SHA-256 without the GIL, from the libcrypto that Python's own hashlib already loaded (found
# in /proc/self/maps once _hashlib is imported): no build dependency (no OpenSSL headers; the
# few functions are declared here, as OpenSSL 1.1 and 3 both export them), and when it is
# not there, sha256_without_gil() is False and callers hash with hashlib as before.
#
# Why: the journal's writer hashes alt.json while the run's thread drains inline tasks;
# hashlib lets go of the GIL for the hash and then waits for it in CPython's own wait, which
# a drain answers only at its pauses (up to INLINE_GIL_YIELD tasks). Hashed here, inside
# write_synced's call without the GIL, it also runs while the disk writes the file.

from posix.uio cimport iovec

cdef extern from *:
    """
    #include <dlfcn.h>
    #include <sys/uio.h>
    typedef struct runner_evp_md_ctx runner_evp_md_ctx;
    typedef struct runner_evp_md runner_evp_md;
    static runner_evp_md_ctx *(*runner_md_ctx_new)(void);
    static void (*runner_md_ctx_free)(runner_evp_md_ctx *);
    static int (*runner_digest_init)(runner_evp_md_ctx *, const runner_evp_md *, void *);
    static int (*runner_digest_update)(runner_evp_md_ctx *, const void *, size_t);
    static int (*runner_digest_final)(runner_evp_md_ctx *, unsigned char *, unsigned int *);
    static const runner_evp_md *runner_sha256_md = NULL;

    /* 1 once libcrypto at `path` gives every function, 0 otherwise (nothing kept). */
    static int runner_libcrypto_load(const char *path) {
        /* RTLD_NOLOAD: the one hashlib loaded, never another (a dlopen that maps one anew
           also left 40 bytes memcheck counts as lost). */
        void *library = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
        const runner_evp_md *(*sha256)(void);
        if (library == NULL)
            return 0;
        *(void **)&runner_md_ctx_new = dlsym(library, "EVP_MD_CTX_new");
        *(void **)&runner_md_ctx_free = dlsym(library, "EVP_MD_CTX_free");
        *(void **)&runner_digest_init = dlsym(library, "EVP_DigestInit_ex");
        *(void **)&runner_digest_update = dlsym(library, "EVP_DigestUpdate");
        *(void **)&runner_digest_final = dlsym(library, "EVP_DigestFinal_ex");
        *(void **)&sha256 = dlsym(library, "EVP_sha256");
        if (!runner_md_ctx_new || !runner_md_ctx_free || !runner_digest_init || !runner_digest_update
                || !runner_digest_final || !sha256) {
            dlclose(library);
            return 0;
        }
        runner_sha256_md = sha256();        /* set last: its being set says all is there */
        return runner_sha256_md != NULL;
    }

    /* The SHA-256 of the count chunks, one after the other, in out (32 bytes); 0, or -1 when
       it could not be made. */
    static int runner_sha256(const struct iovec *chunks, Py_ssize_t count, unsigned char *out) {
        runner_evp_md_ctx *context;
        unsigned int length = 0;
        Py_ssize_t i;
        int made;
        if (runner_sha256_md == NULL || (context = runner_md_ctx_new()) == NULL)
            return -1;
        made = runner_digest_init(context, runner_sha256_md, NULL) == 1;
        for (i = 0; made && i < count; i++)
            made = runner_digest_update(context, chunks[i].iov_base, chunks[i].iov_len) == 1;
        made = made && runner_digest_final(context, out, &length) == 1 && length == 32;
        runner_md_ctx_free(context);
        return made ? 0 : -1;
    }
    """
    int runner_libcrypto_load(const char *path)
    int runner_sha256(const iovec *chunks, Py_ssize_t count, unsigned char *out) nogil


def _libcrypto_path():
    """The path of the libcrypto Python's hashlib uses (bytes), or None: none mapped (a
    hashlib with OpenSSL linked in), or anything unexpected while looking."""
    try:
        import _hashlib  # noqa: F401  (loads libcrypto)
        with open("/proc/self/maps", "rb") as maps:      # paths are bytes: any name, any encoding
            for line in maps:
                fields = line.rstrip(b"\n").split(None, 5)      # address perms offset dev inode path
                if len(fields) == 6 and fields[5].startswith(b"/") and b"/libcrypto.so" in fields[5]:
                    return fields[5]
    except Exception:
        pass
    return None


cdef int SHA256_STATE = -1      # -1: not looked for yet; 0: none; 1: libcrypto's, without the GIL


cdef bint sha256_ready() except -1:
    """Looks for libcrypto the first time it is asked (importing _hashlib if nobody did: a
    process that never hashes never loads it), then says whether it was found."""
    global SHA256_STATE
    if SHA256_STATE < 0:
        path = _libcrypto_path()
        SHA256_STATE = 1 if path is not None and runner_libcrypto_load(path) == 1 else 0
    return SHA256_STATE == 1


def sha256_without_gil():
    """True when write_synced(digest=True) can hash (libcrypto found); hashlib otherwise."""
    return sha256_ready()
