// SPDX-License-Identifier: Apache-2.0
/* libc's own functions: what every interposed call falls through to (dlsym(RTLD_NEXT)). The list
 * is REAL_FUNCS in preload.h; each pointer has the type of libc's declaration. */
#include "preload.h"

#include <dlfcn.h>

#define DEFINE_REAL(name) INTERNAL __typeof__(name) *real_##name;
REAL_FUNCS(DEFINE_REAL)
#undef DEFINE_REAL

/* A racing double resolution stores the same pointer twice. */
void *resolve_real(const char *name, void **slot) {
    void *f = dlsym(RTLD_NEXT, name);
    __atomic_store_n(slot, f, __ATOMIC_RELAXED);
    return f;
}

void resolve_all_reals(void) {
#define RESOLVE(name) (void)REAL(name);
    REAL_FUNCS(RESOLVE)
#undef RESOLVE
}
