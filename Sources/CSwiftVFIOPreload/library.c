// SPDX-License-Identifier: Apache-2.0
/* libswiftvfio.so: found, loaded on first need, and told to report its fd table here.
 *
 * Loaded lazily (the first model path or fd), so a process that never touches VFIO never loads the
 * Swift runtime. One model per process: if the program already links libswiftvfio.so, that copy
 * is used; otherwise the library beside this one (both are products of the same build). */
#include "preload.h"

#include <dlfcn.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>

INTERNAL struct swiftvfio_lib lib;
INTERNAL atomic_int lib_state;
/* libswiftvfio.so's mapped address range: calls whose return address lies here come from the
 * model itself and go to libc. */
INTERNAL _Atomic uintptr_t lib_lo, lib_hi;
INTERNAL __thread int in_model __attribute__((tls_model("initial-exec")));
/* The directory this library was loaded from (startup.c). */
extern INTERNAL char own_dir[PATH_MAX];
INTERNAL void stat_answers_init(void);
INTERNAL void exit_hook_install(void);

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

void say(const char *a, const char *b, const char *c) {
    char line[1024];
    int n = snprintf(line, sizeof line, "swiftvfio-preload: %s%s%s\n", a, b ? b : "", c ? c : "");
    if (n > 0) (void)!CALL_REAL(-1, write, 2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

struct range_probe {
    uintptr_t addr, lo, hi;
};

static int find_object(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct range_probe *p = data;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    int hit = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD) continue;
        uintptr_t s = info->dlpi_addr + ph->p_vaddr, e = s + ph->p_memsz;
        if (s < lo) lo = s;
        if (e > hi) hi = e;
        if (p->addr >= s && p->addr < e) hit = 1;
    }
    if (!hit) return 0;
    p->lo = lo;
    p->hi = hi;
    return 1;
}

/* The library: the process's own copy, else the one beside the interposer; NULL after saying why. */
static void *open_library(void) {
    Dl_info info;
    void *own = dlsym(RTLD_DEFAULT, "swiftvfio_open");
    if (own && dladdr(own, &info) && info.dli_fname && info.dli_fname[0]) {
        void *h = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
        if (h) return h;
    }
    if (own_dir[0] == 0) {
        say("cannot locate libswiftvfio-preload.so itself", NULL, "; model paths answer ENOENT");
        return NULL;
    }
    /* The development name first, then the release library's soname (an installed copy may
     * carry only that). */
    char path[PATH_MAX], why[PATH_MAX + 256] = "";
    static const char *const names[] = { "libswiftvfio.so", "libswiftvfio.so.0" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (snprintf(path, sizeof path, "%s/%s", own_dir, names[i]) >= (int)sizeof path) continue;
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (h) return h;
        const char *e = dlerror();
        if (e && why[0] == 0) snprintf(why, sizeof why, "%s", e);
    }
    say("cannot load libswiftvfio.so: ", why[0] ? why : own_dir, "; model paths answer ENOENT");
    return NULL;
}

static void lib_load(void) {
    in_model++;
    void *h = open_library();
    if (h == NULL) goto fail;
#define SYM(name)                                                                                  \
    if ((*(void **)&lib.name = dlsym(h, "swiftvfio_" #name)) == NULL) {                            \
        say("libswiftvfio.so lacks swiftvfio_", #name, "; model paths answer ENOENT");             \
        goto fail;                                                                                 \
    }
    LIB_FUNCS(SYM)
#undef SYM
    /* A topology that does not load must not become an empty model the client half works with:
     * say why once, and answer ENOENT for every model path. */
    if (lib.load_environment_topology() < 0) {
        const char *why = lib.last_error();
        say(why ? why : "SWIFTVFIO_TOPOLOGY does not load", NULL, "; model paths answer ENOENT");
        goto fail;
    }
    struct range_probe probe = { (uintptr_t)lib.open, 0, 0 };
    if (dl_iterate_phdr(find_object, &probe)) {
        atomic_store(&lib_lo, probe.lo);
        atomic_store(&lib_hi, probe.hi);
    }
    stat_answers_init();
    /* From here the model reports its fd table (the fds a linked program already opened first). */
    lib.set_fd_observer(fd_observed);
    in_model--;
    atomic_store(&lib_state, 1);
    exit_hook_install();
    return;
fail:
    in_model--;
    atomic_store(&lib_state, -1);
}

int lib_ready(void) {
    int s = atomic_load_explicit(&lib_state, memory_order_acquire);
    if (LIKELY(s != 0)) return s > 0;
    int saved = errno; /* loading (dlopen, the runtime's start-up) must not leak errno */
    pthread_once(&lib_once, lib_load);
    errno = saved;
    return atomic_load(&lib_state) > 0;
}

EXPORT int swiftvfio_preload_state(void) { return atomic_load(&lib_state); }

/* For the KVM family (kvm/kvm_device.h): an address inside libswiftvfio.so, loaded on first need. */
void *preload_model_library(void) { return lib_ready() ? (void *)lib.open : NULL; }
