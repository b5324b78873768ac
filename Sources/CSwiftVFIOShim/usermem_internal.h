// SPDX-License-Identifier: Apache-2.0
/* What the guarded user-memory copies (usermem.c) and the fault handler that serves them
 * (usermem_signals.c) share: the build flavour, the user address space, the per-thread guard, the
 * x86-64 fixup routines' addresses and the lazy installation. Private to the shim (not in include/). */
#ifndef SVFIO_USERMEM_INTERNAL_H
#define SVFIO_USERMEM_INTERNAL_H

#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SVFIO_HIDDEN __attribute__((visibility("hidden")))

/* ---- build flavour --------------------------------------------------------------------- */
#if defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define SVFIO_ASAN 1
#  endif
#  if __has_feature(thread_sanitizer)
#    define SVFIO_TSAN 1
#  endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(SVFIO_ASAN)
#  define SVFIO_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(SVFIO_TSAN)
#  define SVFIO_TSAN 1
#endif

#if defined(__clang__)
#  define SVFIO_NOSAN __attribute__((no_sanitize("address", "hwaddress", "thread", "memory", "undefined")))
#elif defined(__GNUC__)
#  define SVFIO_NOSAN __attribute__((no_sanitize_address, no_sanitize_thread, no_sanitize_undefined))
#else
#  define SVFIO_NOSAN
#endif
#define SVFIO_INLINE static inline __attribute__((always_inline)) SVFIO_NOSAN
/* The copy loops live in their own functions: the function that calls sigsetjmp then modifies
 * no local after it (so nothing can be "clobbered by longjmp", gcc -Wclobbered stays quiet),
 * and the loop's registers are all dead at the jump. */
#define SVFIO_LOOP static __attribute__((noinline)) SVFIO_NOSAN
/* initial-exec: a %fs-relative access, no __tls_get_addr call on the hot path and nothing that
 * could allocate in the signal handler. Fine for an executable or a library loaded at startup. */
#define SVFIO_TLS _Thread_local __attribute__((tls_model("initial-exec")))

#ifdef SVFIO_ASAN
void __asan_loadN(uintptr_t addr, uintptr_t size);
void __asan_storeN(uintptr_t addr, uintptr_t size);
#  define SVFIO_KREAD(p, n)  __asan_loadN((uintptr_t)(p), (uintptr_t)(n))
#  define SVFIO_KWRITE(p, n) __asan_storeN((uintptr_t)(p), (uintptr_t)(n))
#elif defined(SVFIO_TSAN)
#  if defined(__clang__)
typedef unsigned long svfio_tsan_size; /* compiler-rt's tsan_interface.h */
#  else
typedef long svfio_tsan_size;          /* gcc's builtin declaration */
#  endif
void __tsan_read_range(void *addr, svfio_tsan_size size);
void __tsan_write_range(void *addr, svfio_tsan_size size);
#  define SVFIO_KREAD(p, n)  __tsan_read_range((void *)(p), (svfio_tsan_size)(n))
#  define SVFIO_KWRITE(p, n) __tsan_write_range((void *)(p), (svfio_tsan_size)(n))
#else
#  define SVFIO_KREAD(p, n)  ((void)0)
#  define SVFIO_KWRITE(p, n) ((void)0)
#endif

/* x86-64: copy_from_user/copy_to_user are fixup copies (see below), no sigsetjmp. */
#if defined(__x86_64__)
#  define SVFIO_FIXUP_COPIES 1
#endif

/* ---- address space (the kernel's access_ok) -------------------------------------------- */
#if defined(__x86_64__)
#  define SVFIO_USER_END (((uintptr_t)1 << 56) - 4096) /* TASK_SIZE_MAX with 5-level paging */
#  define SVFIO_CANONICAL_4L ((uintptr_t)1 << 47)      /* beyond: #GP on 4-level paging */
#elif defined(__aarch64__)
#  define SVFIO_USER_END ((uintptr_t)1 << 52)
#else
#  define SVFIO_USER_END UINTPTR_MAX
#endif

SVFIO_INLINE uintptr_t svfio_untag(uintptr_t a) {
#if defined(__aarch64__)
    return (uintptr_t)((intptr_t)(a << 8) >> 8); /* the kernel's untagged_addr(): TBI */
#else
    return a;
#endif
}

/* ---- per-thread guard (the sigsetjmp path: every copy but the x86-64 fixup ones) ----------- */
struct svfio_guard {
    sigjmp_buf jb;
    uintptr_t lo, hi; /* untagged user range being accessed */
    struct svfio_guard *outer;
#ifdef SVFIO_TSAN
    int saved_errno;
#endif
};
/* The guard of the copy running on this thread, or NULL: set by usermem.c, read by the handler. */
extern SVFIO_HIDDEN SVFIO_TLS struct svfio_guard *svfio_tls_guard;

#ifdef SVFIO_FIXUP_COPIES
/* The x86-64 copy routines (usermem.c) and the address of each one's `rep movsb`, which the handler
 * recognises (usermem_signals.c). Each returns the bytes not copied (0 on success); on a fault
 * svfio_rep_copy_in has zeroed all of dst. */
SVFIO_HIDDEN size_t svfio_rep_copy_in(void *dst, uintptr_t src, size_t n);
SVFIO_HIDDEN size_t svfio_rep_copy_out(uintptr_t dst, const void *src, size_t n);
extern SVFIO_HIDDEN const char svfio_rep_copy_in_insn[], svfio_rep_copy_out_insn[];
#define SVFIO_REP_MOVSB_LEN 2 /* f3 a4 */
#endif

/* ---- lazy installation (usermem_signals.c) ------------------------------------------------ */
/* Set once the first installation has run; read on every copy. */
extern SVFIO_HIDDEN atomic_int svfio_ready;
/* Installs the handler once per process (pthread_once); later calls return at once. */
SVFIO_HIDDEN void svfio_usermem_first_install(void);

SVFIO_INLINE void svfio_ensure_installed(void) {
    if (__builtin_expect(!atomic_load_explicit(&svfio_ready, memory_order_acquire), 0))
        svfio_usermem_first_install();
}

#endif /* SVFIO_USERMEM_INTERNAL_H */
