// SPDX-License-Identifier: Apache-2.0
/* The fault handler behind the guarded user-memory copies (usermem.c says the design): a SIGSEGV and
 * SIGBUS handler that turns a fault of a copy into -EFAULT, as the kernel's exception-table fixups
 * do, and hands every other fault to the handler installed before it, as if it were not there.
 *
 *   - x86-64 fixup copies: a fault at one of the two `rep movsb` addresses resumes after it
 *     (svfio_fixup_copy); the copy then returns what it did not copy.
 *   - guarded copies: a fault inside the thread's published guard range siglongjmps back to the
 *     copy (svfio_fault_in_guard), with the interrupted context's signal mask restored.
 *   - anything else is chained (svfio_chain): the older handler runs with its own sa_mask, SIG_DFL
 *     re-executes the fault with the default action, a user-sent signal is re-raised.
 *   - installation is lazy (the first copy) or explicit (svfio_usermem_install_guard()), and may be
 *     repeated to get back on top of a handler installed later, chaining to it. */
#define _GNU_SOURCE
#include "swiftvfio_shim.h"
#include "usermem_internal.h"
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

/* ---- re-entry bookkeeping -------------------------------------------------------------- */
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
SVFIO_HIDDEN atomic_int svfio_ready; /* the lazy first install has run */

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

#ifdef SVFIO_FIXUP_COPIES
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

void svfio_usermem_first_install(void) { pthread_once(&svfio_once, svfio_first_install); }

int svfio_usermem_install_guard(void) {
    svfio_usermem_first_install();
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
