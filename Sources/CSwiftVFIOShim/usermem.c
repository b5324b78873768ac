// SPDX-License-Identifier: Apache-2.0
/* Guarded user-memory copies: the model's copy_from_user / copy_to_user / strncpy_from_user.
 *
 * Two files: this one holds the copies (the fixup routines, the guarded loops, the entry points);
 * usermem_signals.c holds the SIGSEGV/SIGBUS handler that makes their faults harmless, its chaining
 * to the handlers installed before it, and its installation. usermem_internal.h is what they share.
 *
 * The kernel makes a bad user pointer harmless with exception-table fixups: the faulting
 * instruction of the copy loop has a fixup address, the page-fault handler jumps there, and the
 * copy returns -EFAULT. The user-space counterpart here:
 *
 *   - A SIGSEGV and SIGBUS handler (SA_SIGINFO|SA_NODEFER|SA_ONSTACK), installed once, lazily
 *     and thread-safely (pthread_once) by the first copy, or explicitly with
 *     svfio_usermem_install_guard().
 *   - x86-64, copy_from_user/copy_to_user: as in the kernel, a fixup address. The copy is one
 *     `rep movsb` at a known address; the handler recognises a fault there by the interrupted
 *     instruction pointer and resumes after it, and the copy returns what it did not copy. The
 *     success path costs the copy alone.
 *   - strncpy_from_user (and every copy elsewhere): a per-thread pointer to the active "guard": a
 *     sigjmp_buf plus the user range [lo, hi)
 *     being copied. A copy does sigsetjmp(buf, 0) (no signal-mask syscall), publishes the
 *     guard, runs a volatile word/byte copy loop, and withdraws the guard. No syscall per copy.
 *   - The handler siglongjmps back only if the faulting thread is inside a guarded copy AND the
 *     fault is kernel-generated (si_code > 0) AND si_addr lies within the range being copied
 *     (x86-64: also a #GP, reported as SI_KERNEL with si_addr 0, when the range reaches
 *     non-canonical addresses). Before jumping it restores the signal mask of the interrupted
 *     context (uc_sigmask) with one rt_sigprocmask: with SA_NODEFER the mask is normally
 *     unchanged already, but when our handler is called through a wrapper that blocked signals
 *     (TSan's, or another library chaining to us) a savemask-0 siglongjmp would leave them
 *     blocked. This costs a syscall on the fault path only.
 *   - Every other fault is chained to the handler that was installed before ours (its
 *     sa_sigaction or sa_handler per SA_SIGINFO, run with its sa_mask; SA_RESETHAND honoured).
 *     SIG_DFL (or SIG_IGN for a kernel-generated fault, which the kernel would not ignore
 *     either): reset the disposition to SIG_DFL and return, so the faulting instruction
 *     re-executes and the process dies by the signal as usual; a user-sent signal (si_code <= 0)
 *     is re-raised with tgkill instead, or dropped for SIG_IGN.
 *
 * Handlers installed after ours (a host program, the Swift runtime's backtracer -- which only
 * installs itself over SIG_DFL at startup, i.e. normally before us --, a crash reporter) take
 * precedence and our guard is then bypassed. svfio_usermem_install_guard() may be called again
 * at any time: it re-checks whether our handler is still the current one and, if not, installs
 * it again on top, chaining to the newcomer. If the newcomer itself chains back to us (it saved
 * our action as its "previous"), our re-entered handler notices (same siginfo/ucontext, deeper
 * frame on the same stack) and continues with the next older handler, so the chain neither
 * loops nor skips anyone. At most SVFIO_MAX_CHAIN such layers are kept per signal.
 *
 * Sanitizers: the copy loops are not instrumented (no_sanitize address/thread/memory/undefined:
 * user addresses are wild by design, and ASan's memcpy interceptor would inspect their shadow),
 * and they never call memcpy on user memory. The kernel-side buffer is still checked: under
 * ASan with __asan_{load,store}N, under TSan with __tsan_{read,write}_range. Under TSan the
 * handler is called from TSan's signal wrapper, siglongjmp goes through TSan's interceptor
 * (which unwinds its shadow stack and signal-handler depth), and errno, which TSan's wrapper
 * sets to 99 around the user handler, is saved per copy and restored on the fault path.
 *
 * TSan needs no slower fallback path: a SIGSEGV/SIGBUS raised by the copy is synchronous, so
 * TSan's wrapper calls our handler at once (tested with clang 21 and gcc 12, including 8 threads
 * faulting concurrently). ASan: its own SEGV handler (handle_segv=1) becomes our "previous" one
 * and still reports genuine crashes; with ASAN_OPTIONS=allow_user_segv_handler=0 ASan ignores
 * our sigaction and guarded faults would be reported as crashes.
 *
 * Semantics beyond the header: copy_from_user zeroes the whole destination on -EFAULT (the
 * kernel zeroes the uncopied tail); copy_to_user may have written a prefix; both reject, like
 * access_ok(), ranges that wrap or end beyond the largest user address (x86-64: 2^56-4096), and
 * strncpy_from_user scans no further than that address (-EFAULT if it gets there first).
 *
 * Caveats: a host that replaces our handler and never calls svfio_usermem_install_guard()
 * again leaves copies unguarded (a bad pointer then reaches the host's handler); the TLS
 * variables use the initial-exec model (fine for an executable or a library linked at startup;
 * dlopen() of a shared library containing this file needs a little static-TLS surplus, which
 * glibc reserves); the aarch64 paths (TBI untagging, 52-bit limit) are untested.
 */
#define _GNU_SOURCE
#include "swiftvfio_shim.h"
#include "usermem_internal.h"
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

/* ---- per-thread guard ------------------------------------------------------------------ */
SVFIO_HIDDEN SVFIO_TLS struct svfio_guard *svfio_tls_guard;

/* ---- x86-64: copies with a fixup address (the kernel's exception table) -------------------
 * The two hot copies need no recovery point at all on x86-64, as in the kernel: each is one
 * `rep movsb` at a known address (FSRM makes short ones cheap). A fault there is recognised by
 * the handler from the interrupted instruction pointer (svfio_fixup_copy), which moves it past
 * the `rep movsb`; RCX then holds the bytes not copied, which the routine returns. No sigsetjmp,
 * no guard to publish: the success path is the copy itself. Both routines are plain asm, so no
 * sanitizer instruments the user-side access; the kernel-side buffer is checked by the caller. */
#ifdef SVFIO_FIXUP_COPIES
/* size_t fn(void *dst, const void *src, size_t n): the bytes not copied (0 on success); on a fault
 * svfio_rep_copy_in has zeroed all of dst. */
__asm__(".text\n"
        ".p2align 4\n"
        ".globl svfio_rep_copy_in\n"
        ".hidden svfio_rep_copy_in\n"
        ".type svfio_rep_copy_in, @function\n"
        "svfio_rep_copy_in:\n"
        "    movq %rdx, %rcx\n"
        "    movq %rdi, %r8\n"
        ".globl svfio_rep_copy_in_insn\n"
        ".hidden svfio_rep_copy_in_insn\n"
        "svfio_rep_copy_in_insn:\n"
        "    rep movsb\n"
        "    movq %rcx, %rax\n"
        "    testq %rcx, %rcx\n"
        "    jnz 1f\n"
        "    ret\n"
        /* A fault: all of dst is zeroed (no stale or partial data, as the kernel's
         * _copy_from_user leaves none); the result stays nonzero. */
        "1:  movq %r8, %rdi\n"
        "    movq %rdx, %rcx\n"
        "    movq %rax, %rdx\n"
        "    xorl %eax, %eax\n"
        "    rep stosb\n"
        "    movq %rdx, %rax\n"
        "    ret\n"
        ".size svfio_rep_copy_in, .-svfio_rep_copy_in\n"
        ".p2align 4\n"
        ".globl svfio_rep_copy_out\n"
        ".hidden svfio_rep_copy_out\n"
        ".type svfio_rep_copy_out, @function\n"
        "svfio_rep_copy_out:\n"
        "    movq %rdx, %rcx\n"
        ".globl svfio_rep_copy_out_insn\n"
        ".hidden svfio_rep_copy_out_insn\n"
        "svfio_rep_copy_out_insn:\n"
        "    rep movsb\n"
        "    movq %rcx, %rax\n"
        "    ret\n"
        ".size svfio_rep_copy_out, .-svfio_rep_copy_out\n");
#endif

/* ---- copy loops (run with the guard published) ----------------------------------------- */
typedef uint64_t __attribute__((__may_alias__)) svfio_word;                  /* aligned, user */
typedef uint64_t __attribute__((__may_alias__, __aligned__(1))) svfio_uword; /* kernel side */
#define SVFIO_W sizeof(uint64_t)

/* User-side accesses are volatile and naturally aligned (a word never straddles a page, so
 * si_addr is exact); kernel-side ones are plain, possibly unaligned. */
#ifndef SVFIO_FIXUP_COPIES
SVFIO_LOOP void svfio_copy_in(unsigned char *d, uintptr_t src, size_t n) {
    const volatile unsigned char *s = (const volatile unsigned char *)src;
    while (n && ((uintptr_t)s & (SVFIO_W - 1))) { *d++ = *s++; n--; }
    while (n >= SVFIO_W) {
        *(svfio_uword *)d = *(const volatile svfio_word *)(uintptr_t)s;
        s += SVFIO_W; d += SVFIO_W; n -= SVFIO_W;
    }
    while (n) { *d++ = *s++; n--; }
}

SVFIO_LOOP void svfio_copy_out(uintptr_t dst, const unsigned char *s, size_t n) {
    volatile unsigned char *d = (volatile unsigned char *)dst;
    while (n && ((uintptr_t)d & (SVFIO_W - 1))) { *d++ = *s++; n--; }
    while (n >= SVFIO_W) {
        *(volatile svfio_word *)(uintptr_t)d = *(const svfio_uword *)s;
        s += SVFIO_W; d += SVFIO_W; n -= SVFIO_W;
    }
    while (n) { *d++ = *s++; n--; }
}

#endif

#define SVFIO_ONES  0x0101010101010101ull
#define SVFIO_HIGHS 0x8080808080808080ull

/* Copies bytes up to and including the first NUL among n; returns its index, or n. */
SVFIO_LOOP size_t svfio_str_in(unsigned char *d, uintptr_t src, size_t n) {
    const volatile unsigned char *s = (const volatile unsigned char *)src;
    size_t i = 0;
    while (i < n && ((uintptr_t)(s + i) & (SVFIO_W - 1))) {
        unsigned char c = s[i];
        d[i] = c;
        if (!c) return i;
        i++;
    }
    while (n - i >= SVFIO_W) {
        uint64_t w = *(const volatile svfio_word *)(src + i);
        if ((w - SVFIO_ONES) & ~w & SVFIO_HIGHS) break; /* a NUL in this word: finish bytewise */
        *(svfio_uword *)(d + i) = w;
        i += SVFIO_W;
    }
    while (i < n) {
        unsigned char c = s[i];
        d[i] = c;
        if (!c) return i;
        i++;
    }
    return n;
}

/* ---- the guarded entry points ------------------------------------------------------------
 * Pattern: fill the guard, sigsetjmp(jb, 0), publish it (compiler barriers keep the volatile
 * user accesses between publish and withdraw), copy, withdraw. On a fault the handler
 * siglongjmps to the sigsetjmp, which then returns nonzero. Nothing read after the jump is
 * modified after the sigsetjmp, so no local needs to be volatile. */

#ifdef SVFIO_TSAN
#  define SVFIO_SAVE_ERRNO(g)    ((g).saved_errno = errno)
#  define SVFIO_RESTORE_ERRNO(g) (errno = (g).saved_errno)
#else
#  define SVFIO_SAVE_ERRNO(g)    ((void)0)
#  define SVFIO_RESTORE_ERRNO(g) ((void)0)
#endif

#define SVFIO_GUARD_ENTER(g)                                   \
    do {                                                       \
        atomic_signal_fence(memory_order_seq_cst);             \
        svfio_tls_guard = &(g);                                \
        atomic_signal_fence(memory_order_seq_cst);             \
    } while (0)
#define SVFIO_GUARD_LEAVE(g)                                   \
    do {                                                       \
        atomic_signal_fence(memory_order_seq_cst);             \
        svfio_tls_guard = (g).outer;                           \
        atomic_signal_fence(memory_order_seq_cst);             \
    } while (0)

SVFIO_INLINE bool svfio_access_ok(uintptr_t addr, size_t len) {
    uintptr_t a = svfio_untag(addr);
    return a <= SVFIO_USER_END && len <= SVFIO_USER_END - a;
}

#ifdef SVFIO_FIXUP_COPIES
/* The first copy of the process installs the guard, then copies: out of line, and reached by a tail
 * call, so the copies' common path saves no register and sets up no frame. */
static __attribute__((noinline, cold)) int svfio_first_copy_from_user(void *dst, uintptr_t src, size_t len) {
    svfio_usermem_first_install();
    return svfio_copy_from_user(dst, src, len);
}

static __attribute__((noinline, cold)) int svfio_first_copy_to_user(uintptr_t dst, const void *src, size_t len) {
    svfio_usermem_first_install();
    return svfio_copy_to_user(dst, src, len);
}
#endif

SVFIO_NOSAN int svfio_copy_from_user(void *dst, uintptr_t src, size_t len) {
    if (len == 0) return 0;
    if (!svfio_access_ok(src, len)) goto efault;
#ifdef SVFIO_FIXUP_COPIES
    if (__builtin_expect(!atomic_load_explicit(&svfio_ready, memory_order_acquire), 0))
        return svfio_first_copy_from_user(dst, src, len);
    SVFIO_KWRITE(dst, len);
    /* On a fault the routine has zeroed dst. */
    return svfio_rep_copy_in(dst, src, len) == 0 ? 0 : -EFAULT;
#else
    svfio_ensure_installed();
    SVFIO_KWRITE(dst, len);
    struct svfio_guard g;
    g.lo = svfio_untag(src);
    g.hi = g.lo + len;
    g.outer = svfio_tls_guard;
    SVFIO_SAVE_ERRNO(g);
    if (sigsetjmp(g.jb, 0)) {
        svfio_tls_guard = g.outer;
        SVFIO_RESTORE_ERRNO(g);
        goto efault;
    }
    SVFIO_GUARD_ENTER(g);
    svfio_copy_in((unsigned char *)dst, src, len);
    SVFIO_GUARD_LEAVE(g);
    return 0;
#endif
efault:
    /* Like the kernel's _copy_from_user(): no stale or partial data left in the buffer. */
    memset(dst, 0, len);
    return -EFAULT;
}

SVFIO_NOSAN int svfio_copy_to_user(uintptr_t dst, const void *src, size_t len) {
    if (len == 0) return 0;
    if (!svfio_access_ok(dst, len)) return -EFAULT;
#ifdef SVFIO_FIXUP_COPIES
    if (__builtin_expect(!atomic_load_explicit(&svfio_ready, memory_order_acquire), 0))
        return svfio_first_copy_to_user(dst, src, len);
    SVFIO_KREAD(src, len);
    /* A prefix may have been written, as in the kernel. */
    return svfio_rep_copy_out(dst, src, len) == 0 ? 0 : -EFAULT;
#else
    svfio_ensure_installed();
    SVFIO_KREAD(src, len);
    struct svfio_guard g;
    g.lo = svfio_untag(dst);
    g.hi = g.lo + len;
    g.outer = svfio_tls_guard;
    SVFIO_SAVE_ERRNO(g);
    if (sigsetjmp(g.jb, 0)) {
        svfio_tls_guard = g.outer;
        SVFIO_RESTORE_ERRNO(g);
        return -EFAULT; /* a prefix may have been written, as in the kernel */
    }
    SVFIO_GUARD_ENTER(g);
    svfio_copy_out(dst, (const unsigned char *)src, len);
    SVFIO_GUARD_LEAVE(g);
    return 0;
#endif
}

SVFIO_NOSAN long svfio_strncpy_from_user(char *dst, uintptr_t src, size_t max) {
    if (max == 0) return 0;
    if (max > (size_t)LONG_MAX) max = (size_t)LONG_MAX;
    uintptr_t a = svfio_untag(src);
    if (a >= SVFIO_USER_END) return -EFAULT;
    /* Like the kernel: scan no further than the end of the user address space. */
    size_t limit = max < SVFIO_USER_END - a ? max : SVFIO_USER_END - a;
    svfio_ensure_installed();
    SVFIO_KWRITE(dst, limit);
    struct svfio_guard g;
    g.lo = a;
    g.hi = a + limit;
    g.outer = svfio_tls_guard;
    SVFIO_SAVE_ERRNO(g);
    if (sigsetjmp(g.jb, 0)) {
        svfio_tls_guard = g.outer;
        SVFIO_RESTORE_ERRNO(g);
        return -EFAULT;
    }
    SVFIO_GUARD_ENTER(g);
    size_t n = svfio_str_in((unsigned char *)dst, src, limit);
    SVFIO_GUARD_LEAVE(g);
    if (n < limit) return (long)n;
    return limit == max ? (long)max : -EFAULT;
}
