// SPDX-License-Identifier: Apache-2.0
/* Start-up and exit: the constructor, the exit hook, and keeping the Swift runtime out. */
#include "preload.h"

#include <dlfcn.h>
#include <limits.h>
#include <time.h>

INTERNAL char own_dir[PATH_MAX];
INTERNAL int real_dev_vfio_exists;

/* ---- keeping the Swift runtime out ------------------------------------------------------------
 * SwiftPM links every product with swiftc, even a C-only one, and swiftc adds the Swift start-up
 * object swiftrt.o (whose constructor registers the image's Swift metadata with the runtime) and
 * -lswiftCore, without --as-needed. The result would be NEEDED libswiftCore.so: every process run
 * under the preload (ls, python3) would load the Swift runtime and libstdc++ at start-up (about
 * 1.3 ms each here) and get the runtime's crash handlers on SIGSEGV, SIGBUS, SIGILL, SIGFPE,
 * SIGTRAP and SIGABRT. The runtime must arrive only with libswiftvfio.so, when the model is used.
 *
 * Without unsafe flags, two pieces do it:
 *  - swiftc passes each object's ".swift1_autolink_entries" strings (how Swift objects ask for
 *    their libraries) to the link command before its own -lswiftCore; ours asks for
 *    --as-needed, so -lswiftCore is recorded only if something uses it;
 *  - swiftrt.o's two references into the runtime are satisfied here by hidden no-ops: this
 *    image has no Swift metadata to register and no Swift thunks to name. Hidden, they are not
 *    exported and never stand in for the runtime's own in the process.
 * Scripts/test-preload.sh checks the built library has no NEEDED Swift library. */
/* no_sanitize: ASan would add a redzone and a metadata reference to a section the link discards. */
__attribute__((section(".swift1_autolink_entries"), used, no_sanitize("address"))) static const char swift_autolink_as_needed[] =
    "-Wl,--as-needed";
__attribute__((visibility("hidden"))) void swift_addNewDSOImage(const void *sections);
__attribute__((visibility("hidden"))) void swift_addNewDSOImage(const void *sections) { (void)sections; }
__attribute__((visibility("hidden"))) int _swift_backtrace_isThunkFunction(const char *name);
__attribute__((visibility("hidden"))) int _swift_backtrace_isThunkFunction(const char *name) {
    (void)name;
    return 0;
}

/* ---- start-up ------------------------------------------------------------------------------- */

__attribute__((constructor)) static void preload_init(void) {
    resolve_all_reals();
    struct stat st;
    real_dev_vfio_exists = CALL_REAL(-1, stat, "/dev/vfio", &st) == 0 && S_ISDIR(st.st_mode);
    Dl_info info;
    char resolved[PATH_MAX];
    if (dladdr((void *)&swiftvfio_preload_state, &info) && info.dli_fname && realpath(info.dli_fname, resolved)) {
        char *slash = strrchr(resolved, '/');
        if (slash) {
            *slash = 0;
            snprintf(own_dir, sizeof own_dir, "%s", slash == resolved ? "/" : resolved);
        }
    }
}

/* ---- process exit ----------------------------------------------------------------------------
 * The kernel closes the files of a process that exits (exit_files()), so every release runs: a
 * VMM's `quit` that finalizes no device still releases its device, group and container. The model
 * lives in the process, and its files would simply vanish with it. So, at exit(), the library
 * closes every model fd (swiftvfio_exit_files(): each close and release runs and is traced; the
 * observer clears each number here as it goes).
 *
 * An atexit() handler, registered once libswiftvfio.so is loaded and its model made, rather than
 * a destructor: exit() runs atexit handlers in reverse order of registration, all of them before
 * the dynamic linker runs any library's destructors (its own handler was registered first of
 * all, at start-up), so libswiftvfio.so, the Swift runtime and their C++ statics (whose
 * __cxa_atexit handlers were registered while they loaded, before this one) are intact while it
 * runs. A destructor of this library is not ordered against libswiftvfio.so's (neither depends
 * on the other). _exit(), exec and a fatal signal close nothing, as they release nothing here.
 *
 * Not in a forked child (the handler is inherited): the kernel shares the files of a fork with
 * the parent, so the child's exit releases nothing; its copy of the model is dropped unreleased.
 * Not when exit() is called from inside a model call (a C driver's callback): the model is busy. */
static pid_t exit_pid;

static void preload_exit(void) {
    if (in_model || getpid() != exit_pid || atomic_load(&lib_state) <= 0) return;
    int saved = errno;
    kvm_hook_exit(); /* kvm-vfio devices first: their release drops group file references */
    in_model++;
    (void)lib.exit_files();
    in_model--;
    errno = saved;
}

INTERNAL void exit_hook_install(void);
void exit_hook_install(void) {
    exit_pid = getpid();
    (void)atexit(preload_exit);
}
