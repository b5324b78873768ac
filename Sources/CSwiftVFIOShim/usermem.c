// SPDX-License-Identifier: Apache-2.0
/* Guarded user-memory copies: the model's copy_from_user / copy_to_user / strncpy_from_user.
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
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

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

/* ---- per-thread guard ------------------------------------------------------------------ */
struct svfio_guard {
    sigjmp_buf jb;
    uintptr_t lo, hi; /* untagged user range being accessed */
    struct svfio_guard *outer;
#ifdef SVFIO_TSAN
    int saved_errno;
#endif
};
static SVFIO_TLS struct svfio_guard *svfio_tls_guard;

/* Re-entry bookkeeping for chaining (see svfio_chain). */
struct svfio_chainstate {
    const void *info, *uctx;
    uintptr_t frame;
    int depth, active;
};
static SVFIO_TLS struct svfio_chainstate svfio_tls_chain;

/* ---- previous handlers ----------------------------------------------------------------- */
#define SVFIO_NSIGS 2
#define SVFIO_MAX_CHAIN 8
static const int svfio_sigs[SVFIO_NSIGS] = { SIGSEGV, SIGBUS };
struct svfio_prev {
    struct sigaction act;
    atomic_int fired; /* SA_RESETHAND handler already delivered once: now SIG_DFL */
};
static struct {
    struct svfio_prev prev[SVFIO_MAX_CHAIN]; /* oldest first; append-only */
    atomic_int n;                           /* published entries */
} svfio_chain_tab[SVFIO_NSIGS];
static pthread_mutex_t svfio_install_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t svfio_once = PTHREAD_ONCE_INIT;
static atomic_int svfio_ready; /* the lazy first install has run */

static void svfio_handler(int sig, siginfo_t *info, void *uctx);

static bool svfio_is_ours(const struct sigaction *sa) {
    return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == svfio_handler;
}

static int svfio_sig_index(int sig) {
    for (int i = 0; i < SVFIO_NSIGS; i++)
        if (svfio_sigs[i] == sig) return i;
    return -1;
}

/* Async-signal-safe: make sig take its default action, re-raising a user-sent one. */
static void svfio_default_action(int sig, const siginfo_t *info, bool ignored) {
    if (ignored && info && info->si_code <= 0) return; /* SIG_IGN drops a kill()ed signal */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    if (!info || info->si_code <= 0) {
        /* Not a fault that re-executes: raise it again; it is delivered (and fatal) as soon as
         * it is unblocked, at the latest when this handler returns. */
        syscall(SYS_tgkill, (long)getpid(), (long)syscall(SYS_gettid), (long)sig);
    }
    /* A kernel-generated fault: returning re-executes the instruction, now with SIG_DFL. */
}

static void svfio_chain(int sig, siginfo_t *info, void *uctx) {
    int idx = svfio_sig_index(sig);
    int n = idx < 0 ? 0 : atomic_load_explicit(&svfio_chain_tab[idx].n, memory_order_acquire);

    /* Re-entered from a handler we chained to, which chains back to us (it was installed after
     * us and saved our action)? Then the same siginfo/ucontext come back on a deeper frame of
     * the same stack: continue with the next older handler. A fresh fault after a chained
     * handler longjmp'ed away has a different siginfo, or the same one at the same frame. */
    uintptr_t frame = (uintptr_t)__builtin_frame_address(0);
    struct svfio_chainstate saved = svfio_tls_chain;
    int depth = 0;
    if (saved.active && (saved.info == info || saved.uctx == uctx) && frame < saved.frame &&
        saved.frame - frame < ((uintptr_t)1 << 20))
        depth = saved.depth + 1;

    if (depth >= n) { svfio_default_action(sig, info, false); return; }
    struct svfio_prev *p = &svfio_chain_tab[idx].prev[n - 1 - depth];
    const struct sigaction *a = &p->act;
    bool siginfo = (a->sa_flags & SA_SIGINFO) != 0;
    void (*h)(int) = a->sa_handler;
    void (*sa)(int, siginfo_t *, void *) = a->sa_sigaction;
    if (atomic_load_explicit(&p->fired, memory_order_relaxed) ||
        (!siginfo && (h == SIG_DFL || h == SIG_IGN))) {
        svfio_default_action(sig, info, !siginfo && h == SIG_IGN &&
                                        !atomic_load_explicit(&p->fired, memory_order_relaxed));
        return;
    }
    if (a->sa_flags & SA_RESETHAND) atomic_store_explicit(&p->fired, 1, memory_order_relaxed);

    /* Run it as the kernel would have: with its sa_mask (and sig, unless SA_NODEFER) blocked. */
    sigset_t block = a->sa_mask, old;
    if (!(a->sa_flags & SA_NODEFER)) sigaddset(&block, sig);
    pthread_sigmask(SIG_BLOCK, &block, &old);

    svfio_tls_chain = (struct svfio_chainstate){ info, uctx, frame, depth, 1 };
    atomic_signal_fence(memory_order_seq_cst);
    if (siginfo) sa(sig, info, uctx);
    else h(sig);
    atomic_signal_fence(memory_order_seq_cst);
    svfio_tls_chain = saved;

    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

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
size_t svfio_rep_copy_in(void *dst, uintptr_t src, size_t n);
size_t svfio_rep_copy_out(uintptr_t dst, const void *src, size_t n);
extern const char svfio_rep_copy_in_insn[], svfio_rep_copy_out_insn[];
#define SVFIO_REP_MOVSB_LEN 2 /* f3 a4 */

/* Is this fault the user-side access of one of the two copies? Then resume after the
 * `rep movsb` (RCX = the bytes left) and return true. The faulting address must lie in what was
 * left of the user range (or be the #GP of a non-canonical one): a fault on the model's own
 * buffer is a bug, and is chained like any other fault. */
SVFIO_NOSAN static bool svfio_fixup_copy(const siginfo_t *info, void *uctx) {
    if (!uctx || !info || info->si_code <= 0) return false;
    greg_t *r = ((ucontext_t *)uctx)->uc_mcontext.gregs;
    uintptr_t ip = (uintptr_t)r[REG_RIP], user;
    if (ip == (uintptr_t)svfio_rep_copy_in_insn) user = (uintptr_t)r[REG_RSI];
    else if (ip == (uintptr_t)svfio_rep_copy_out_insn) user = (uintptr_t)r[REG_RDI];
    else return false;
    uintptr_t left = (uintptr_t)r[REG_RCX], a = (uintptr_t)info->si_addr;
    bool in_range = a >= user && a - user < left;
    bool noncanonical = info->si_code == SI_KERNEL && a == 0 && user + left > SVFIO_CANONICAL_4L;
    if (!in_range && !noncanonical) return false;
    r[REG_RIP] = (greg_t)(ip + SVFIO_REP_MOVSB_LEN);
    return true;
}
#endif

SVFIO_NOSAN static bool svfio_fault_in_guard(const struct svfio_guard *g, const siginfo_t *info) {
    if (!info || info->si_code <= 0) return false; /* kill()/tgkill()/sigqueue(): not a fault */
    uintptr_t a = svfio_untag((uintptr_t)info->si_addr);
    if (a >= g->lo && a < g->hi) return true;
#if defined(__x86_64__)
    /* A non-canonical address raises #GP, reported as SI_KERNEL with si_addr 0. */
    if (info->si_code == SI_KERNEL && a == 0 && g->hi > SVFIO_CANONICAL_4L) return true;
#endif
    return false;
}

SVFIO_NOSAN static void svfio_handler(int sig, siginfo_t *info, void *uctx) {
#ifdef SVFIO_FIXUP_COPIES
    if (svfio_fixup_copy(info, uctx)) return; /* resumes after the copy, which reports it */
#endif
    struct svfio_guard *g = svfio_tls_guard;
    if (g && svfio_fault_in_guard(g, info)) {
        if (uctx) {
            const ucontext_t *uc = (const ucontext_t *)uctx;
            syscall(SYS_rt_sigprocmask, SIG_SETMASK, &uc->uc_sigmask, NULL, (long)(_NSIG / 8));
        }
        siglongjmp(g->jb, 1);
    }
    svfio_chain(sig, info, uctx);
}

/* ---- installation ---------------------------------------------------------------------- */
static int svfio_install_locked(void) {
    int rc = 0;
    for (int i = 0; i < SVFIO_NSIGS; i++) {
        int sig = svfio_sigs[i];
        struct sigaction cur, old, ours;
        if (sigaction(sig, NULL, &cur) != 0) { rc = -errno; continue; }
        if (svfio_is_ours(&cur)) continue;
        int n = atomic_load_explicit(&svfio_chain_tab[i].n, memory_order_relaxed);
        if (n >= SVFIO_MAX_CHAIN - 1) { rc = -ENOSPC; continue; }
        /* Publish the handler we are about to displace before displacing it. */
        svfio_chain_tab[i].prev[n].act = cur;
        atomic_store_explicit(&svfio_chain_tab[i].prev[n].fired, 0, memory_order_relaxed);
        atomic_store_explicit(&svfio_chain_tab[i].n, n + 1, memory_order_release);

        memset(&ours, 0, sizeof ours);
        ours.sa_sigaction = svfio_handler;
        ours.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
        sigemptyset(&ours.sa_mask);
        if (sigaction(sig, &ours, &old) != 0) { rc = -errno; continue; }
        /* Someone else raced in between the two sigaction calls: chain to them as well. */
        if (!svfio_is_ours(&old) &&
            (old.sa_handler != cur.sa_handler || old.sa_flags != cur.sa_flags)) {
            svfio_chain_tab[i].prev[n + 1].act = old;
            atomic_store_explicit(&svfio_chain_tab[i].prev[n + 1].fired, 0, memory_order_relaxed);
            atomic_store_explicit(&svfio_chain_tab[i].n, n + 2, memory_order_release);
        }
    }
    return rc;
}

static void svfio_first_install(void) {
    pthread_mutex_lock(&svfio_install_lock);
    (void)svfio_install_locked();
    pthread_mutex_unlock(&svfio_install_lock);
    atomic_store_explicit(&svfio_ready, 1, memory_order_release);
}

int svfio_usermem_install_guard(void) {
    pthread_once(&svfio_once, svfio_first_install);
    pthread_mutex_lock(&svfio_install_lock);
    int rc = svfio_install_locked();
    pthread_mutex_unlock(&svfio_install_lock);
    return rc;
}

int svfio_usermem_guard_installed(void) {
    for (int i = 0; i < SVFIO_NSIGS; i++) {
        struct sigaction cur;
        if (sigaction(svfio_sigs[i], NULL, &cur) != 0 || !svfio_is_ours(&cur)) return 0;
    }
    return 1;
}

SVFIO_INLINE void svfio_ensure_installed(void) {
    if (__builtin_expect(!atomic_load_explicit(&svfio_ready, memory_order_acquire), 0))
        pthread_once(&svfio_once, svfio_first_install);
}

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
    pthread_once(&svfio_once, svfio_first_install);
    return svfio_copy_from_user(dst, src, len);
}

static __attribute__((noinline, cold)) int svfio_first_copy_to_user(uintptr_t dst, const void *src, size_t len) {
    pthread_once(&svfio_once, svfio_first_install);
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
