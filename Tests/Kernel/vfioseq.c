// SPDX-License-Identifier: Apache-2.0
/*
 * vfioseq: deterministic pseudo-random sequences of VFIO group, container and device calls, one
 * normalized line per call (issue 17). The same program runs inside a Linux guest (static, against
 * the real kernel) and on the host under libswiftvfio-preload.so (against the model loaded from
 * the topology captured in that guest); Tests/Kernel/compare.py compares the two outputs line by
 * line.
 *
 *   vfioseq -S SYSFS -s SEED -n CALLS [-U] -r ROLE=DEVICE [-r ROLE=DEVICE ...]
 *
 * Seed 0 is the directed sequence (a fixed order through every path the version table names and
 * the errno paths of docs/ERRORS.md a user can reach); -U first drops CAP_SYS_RAWIO from the effective
 * capabilities (no-IOMMU groups then answer EPERM).
 *
 * SYSFS is the sysfs root the roles are resolved in ("/sys" in the guest, the tree rebuilt from
 * the guest's records on the host). A role names an IOMMU group by one of its devices; the group's
 * number comes from DEVICE's iommu_group link and its members from the group's devices directory,
 * so both sides resolve the same names to the same groups. Only logical names are printed: roles,
 * member indexes ("two.1"), handle serials ("g3", "c4", "d5"), buffer offsets; never fd numbers or
 * addresses. Results are "0", a value, or "-ENAME". Exit status 0 unless the arguments are bad.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/vfio.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#define MAX_ROLES 8
#define MAX_MEMBERS 16
#define MAX_HANDLES 24
#define BUF_PAGES 64
#define PAGE 0x1000ULL

/* ---- deterministic generator (splitmix64) ---- */
static uint64_t rng_state;
static uint64_t next64(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static unsigned pick(unsigned n) { return n ? (unsigned)(next64() % n) : 0; }
static int chance(unsigned percent) { return pick(100) < percent; }

/* ---- errno names: the numbers of docs/ERRORS.md and whatever else a kernel might answer ---- */
static const char *errno_name(int e) {
    switch (e) {
    case EPERM: return "EPERM"; case ENOENT: return "ENOENT"; case ESRCH: return "ESRCH";
    case EINTR: return "EINTR"; case EIO: return "EIO"; case ENXIO: return "ENXIO";
    case E2BIG: return "E2BIG"; case EBADF: return "EBADF"; case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM"; case EACCES: return "EACCES"; case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY"; case EEXIST: return "EEXIST"; case ENODEV: return "ENODEV";
    case ENOTDIR: return "ENOTDIR"; case EINVAL: return "EINVAL"; case ENFILE: return "ENFILE";
    case EMFILE: return "EMFILE"; case ENOTTY: return "ENOTTY"; case ENOSPC: return "ENOSPC";
    case ERANGE: return "ERANGE"; case ENOSYS: return "ENOSYS"; case EBADFD: return "EBADFD";
    case EOPNOTSUPP: return "EOPNOTSUPP"; case EOVERFLOW: return "EOVERFLOW";
    default: {
        static char buf[16];
        snprintf(buf, sizeof buf, "E%d", e);
        return buf;
    }
    }
}

/* ---- output ---- */
static unsigned call_no;
static void line(const char *fmt, ...) {
    va_list ap;
    printf("%u ", ++call_no);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}
/* " = 0", " = -EINVAL": the result part of a line for a call returning 0 or -1/errno. */
static const char *res(int rc, int err) {
    static char buf[32];
    if (rc < 0) snprintf(buf, sizeof buf, "-%s", errno_name(err));
    else snprintf(buf, sizeof buf, "%d", rc);
    return buf;
}

/* ---- topology: roles resolved in SYSFS ---- */
struct role {
    char name[32];
    int group;                       /* IOMMU group number, -1 unknown */
    int noiommu;                     /* a group VFIO made (name "vfio-noiommu"): /dev/vfio/noiommu-N */
    int nmembers;
    char members[MAX_MEMBERS][64];   /* sorted */
};
static struct role roles[MAX_ROLES];
static int nroles;
static const char *sysfs = "/sys";

static int cmp_str(const void *a, const void *b) { return strcmp(a, b); }

static void resolve_role(struct role *r, const char *device) {
    char path[PATH_MAX], target[PATH_MAX];
    snprintf(path, sizeof path, "%s/bus/pci/devices/%s/iommu_group", sysfs, device);
    ssize_t n = readlink(path, target, sizeof target - 1);
    r->group = -1;
    r->nmembers = 0;
    if (n <= 0) {
        /* No group: the role still has its one device (GET_DEVICE_FD names it). */
        snprintf(r->members[r->nmembers++], sizeof r->members[0], "%s", device);
        return;
    }
    target[n] = 0;
    const char *last = strrchr(target, '/');
    r->group = atoi(last ? last + 1 : target);
    snprintf(path, sizeof path, "%s/kernel/iommu_groups/%d/name", sysfs, r->group);
    FILE *f = fopen(path, "r");
    if (f) {
        char name[64] = "";
        r->noiommu = fgets(name, sizeof name, f) && strncmp(name, "vfio-noiommu", 12) == 0;
        fclose(f);
    }
    snprintf(path, sizeof path, "%s/kernel/iommu_groups/%d/devices", sysfs, r->group);
    DIR *dir = opendir(path);
    if (!dir) return;
    struct dirent *e;
    while ((e = readdir(dir)) && r->nmembers < MAX_MEMBERS) {
        if (e->d_name[0] == '.') continue;
        snprintf(r->members[r->nmembers++], sizeof r->members[0], "%.63s", e->d_name);
    }
    closedir(dir);
    qsort(r->members, (size_t)r->nmembers, sizeof r->members[0], cmp_str);
}

/* ---- handles: every fd the sequence made, by kind and serial ---- */
enum kind { K_CONTAINER, K_GROUP, K_DEVICE, K_OTHER, K_IOMMUFD };
struct handle {
    int fd;
    enum kind kind;
    char name[48];   /* "c3", "g4(two)", "d5(two.1)", "n6(null)", "i7" */
};
static struct handle handles[MAX_HANDLES];
static int nhandles;
static unsigned serial;
static struct handle *last_added;   /* the handle the latest add_handle made, NULL if none */

static const char *add_handle(int fd, enum kind kind, const char *what) {
    static const char prefix[] = {'c', 'g', 'd', 'n', 'i'};
    last_added = NULL;
    if (nhandles == MAX_HANDLES) { /* full: the new fd is closed again at once */
        close(fd);
        return "dropped";
    }
    struct handle *h = &handles[nhandles++];
    last_added = h;
    h->fd = fd;
    h->kind = kind;
    ++serial;
    if (what) snprintf(h->name, sizeof h->name, "%c%u(%s)", prefix[kind], serial, what);
    else snprintf(h->name, sizeof h->name, "%c%u", prefix[kind], serial);
    return h->name;
}

/* A handle of `kind` most of the time, any handle sometimes; NULL when there is none. */
static struct handle *choose(enum kind kind, unsigned any_percent) {
    if (nhandles == 0) return NULL;
    int of_kind = 0;
    for (int i = 0; i < nhandles; i++) of_kind += handles[i].kind == kind;
    if (of_kind == 0 || chance(any_percent)) return &handles[pick((unsigned)nhandles)];
    int k = (int)pick((unsigned)of_kind);
    for (int i = 0; i < nhandles; i++)
        if (handles[i].kind == kind && k-- == 0) return &handles[i];
    return NULL;
}
static int hfd(struct handle *h) { return h ? h->fd : -1; }
static const char *hname(struct handle *h) { return h ? h->name : "fd(-1)"; }

/* ---- user memory for MAP_DMA: a read-write window between PROT_NONE guards, plus a
 * read-only page; offsets are printed, never addresses ---- */
static uint8_t *rw_buf, *ro_page, *guard_page;

static void map_buffers(void) {
    size_t total = (BUF_PAGES + 4) * PAGE;
    uint8_t *base = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) { perror("mmap"); exit(2); }
    guard_page = base;
    rw_buf = base + PAGE;
    ro_page = base + (BUF_PAGES + 2) * PAGE;
    if (mprotect(rw_buf, BUF_PAGES * PAGE, PROT_READ | PROT_WRITE) ||
        mprotect(ro_page, PAGE, PROT_READ)) {
        perror("mprotect");
        exit(2);
    }
    memset(rw_buf, 0x5a, BUF_PAGES * PAGE);
}

/* ---- the calls ---- */

static void op_open_container(void) {
    int fd = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
    if (fd < 0) { line("open vfio = %s", res(-1, errno)); return; }
    line("open vfio = %s", add_handle(fd, K_CONTAINER, NULL));
}

static void op_open_group(void) {
    char path[64];
    unsigned k = pick((unsigned)nroles + 1);
    if (k == (unsigned)nroles || roles[k].group < 0) {
        /* A node that no group has. */
        snprintf(path, sizeof path, "/dev/vfio/%d", 4000 + (int)pick(3));
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd >= 0) line("open group:bogus = %s", add_handle(fd, K_GROUP, "bogus"));
        else line("open group:bogus = %s", res(-1, errno));
        return;
    }
    snprintf(path, sizeof path, "/dev/vfio/%s%d", roles[k].noiommu ? "noiommu-" : "", roles[k].group);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) { line("open group:%s = %s", roles[k].name, res(-1, errno)); return; }
    line("open group:%s = %s", roles[k].name, add_handle(fd, K_GROUP, roles[k].name));
}

static void op_open_null(void) {
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd < 0) { line("open null = %s", res(-1, errno)); return; }
    line("open null = %s", add_handle(fd, K_OTHER, "null"));
}

static void pick_device_name(char *name, size_t len, char *logical, size_t llen, struct handle *g);

/* /dev/iommu: absent without CONFIG_IOMMUFD (ENOENT), else an iommufd for SET_CONTAINER. */
static void op_open_iommufd(void) {
    int fd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
    if (fd < 0) { line("open iommu = %s", res(-1, errno)); return; }
    line("open iommu = %s", add_handle(fd, K_IOMMUFD, NULL));
}

/* The next fd the process would get, as a limit: every fd-allocating call then fails EMFILE. */
static void op_fd_limit(void) {
    struct rlimit old, tight;
    int probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (probe < 0 || getrlimit(RLIMIT_NOFILE, &old)) { if (probe >= 0) close(probe); return; }
    close(probe);
    tight = old;
    tight.rlim_cur = (rlim_t)probe;
    if (setrlimit(RLIMIT_NOFILE, &tight)) return;
    unsigned v = pick(4);
    int fd = -1, err = 0;
    const char *what = "";
    char call[160];
    if (v == 0) {
        fd = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC); err = errno; what = "open vfio";
        snprintf(call, sizeof call, "%s", what);
    } else if (v == 1 || nroles == 0) {
        struct handle *h = choose(K_GROUP, 20);
        fd = dup(hfd(h)); err = errno;
        snprintf(call, sizeof call, "dup %s", hname(h));
    } else {
        struct handle *g = choose(K_GROUP, 5);
        char name[64], logical[48];
        pick_device_name(name, sizeof name, logical, sizeof logical, g);
        fd = ioctl(hfd(g), VFIO_GROUP_GET_DEVICE_FD, name); err = errno;
        snprintf(call, sizeof call, "GROUP_GET_DEVICE_FD %s %s", hname(g), logical);
    }
    setrlimit(RLIMIT_NOFILE, &old);
    if (fd >= 0) { line("fd-limit %s = fd", call); close(fd); return; }
    line("fd-limit %s = %s", call, res(-1, err));
}

static void op_close(void) {
    if (nhandles == 0) {
        int rc = close(-1);
        line("close fd(-1) = %s", res(rc, errno));
        return;
    }
    int i = (int)pick((unsigned)nhandles);
    int rc = close(handles[i].fd);
    line("close %s = %s", handles[i].name, res(rc, errno));
    handles[i] = handles[--nhandles];
}

static void op_dup(void) {
    struct handle *h = choose(K_GROUP, 60);
    if (!h) return;
    int fd = dup(h->fd);
    if (fd < 0) { line("dup %s = %s", h->name, res(-1, errno)); return; }
    char what[48];
    const char *paren = strchr(h->name, '(');
    if (paren) snprintf(what, sizeof what, "dup:%.*s", (int)strcspn(paren + 1, ")"), paren + 1);
    else snprintf(what, sizeof what, "dup:%.40s", h->name);
    enum kind kind = h->kind;
    char orig[48];
    snprintf(orig, sizeof orig, "%s", h->name);
    line("dup %s = %s", orig, add_handle(fd, kind, what));
}

static void op_get_status(void) {
    struct handle *h = choose(K_GROUP, 15);
    struct vfio_group_status st;
    memset(&st, 0xa5, sizeof st);
    unsigned v = pick(10);
    if (v == 0) {
        int rc = ioctl(hfd(h), VFIO_GROUP_GET_STATUS, NULL);
        line("GROUP_GET_STATUS %s NULL = %s", hname(h), res(rc, errno));
        return;
    }
    st.argsz = v == 1 ? 4 : (v == 2 ? 0 : (v == 3 ? 64 : sizeof st));
    st.flags = v == 4 ? 0xffffffffu : 0;
    unsigned argsz = st.argsz;
    int rc = ioctl(hfd(h), VFIO_GROUP_GET_STATUS, &st);
    if (rc < 0) { line("GROUP_GET_STATUS %s argsz=%u = %s", hname(h), argsz, res(rc, errno)); return; }
    line("GROUP_GET_STATUS %s argsz=%u = %d flags=%#x argsz=%u", hname(h), argsz, rc, st.flags, st.argsz);
}

static void op_set_container(void) {
    struct handle *g = choose(K_GROUP, 10);
    unsigned v = pick(12);
    if (v == 0) {
        int rc = ioctl(hfd(g), VFIO_GROUP_SET_CONTAINER, NULL);
        line("GROUP_SET_CONTAINER %s NULL = %s", hname(g), res(rc, errno));
        return;
    }
    struct handle *c;
    if (v == 1) c = NULL;                      /* fd -1 */
    else if (v == 2) c = choose(K_OTHER, 40);  /* /dev/null or anything */
    else if (v == 3) c = choose(K_GROUP, 30);  /* a group fd: a VFIO file, not a container */
    else if (v == 4) c = choose(K_IOMMUFD, 30);
    else c = choose(K_CONTAINER, 5);
    int fd = hfd(c);
    int rc = ioctl(hfd(g), VFIO_GROUP_SET_CONTAINER, &fd);
    line("GROUP_SET_CONTAINER %s %s = %s", hname(g), hname(c), res(rc, errno));
}

static void op_unset_container(void) {
    struct handle *g = choose(K_GROUP, 10);
    int rc = ioctl(hfd(g), VFIO_GROUP_UNSET_CONTAINER);
    line("GROUP_UNSET_CONTAINER %s = %s", hname(g), res(rc, errno));
}

static const unsigned long iommu_types[] = {
    VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU, VFIO_TYPE1v2_IOMMU, VFIO_SPAPR_TCE_IOMMU,
    VFIO_NOIOMMU_IOMMU, 0, 6 /* VFIO_TYPE1_NESTING_IOMMU */, 99,
};

static void op_set_iommu(void) {
    struct handle *c = choose(K_CONTAINER, 10);
    unsigned long type = iommu_types[pick(sizeof iommu_types / sizeof iommu_types[0])];
    int rc = ioctl(hfd(c), VFIO_SET_IOMMU, type);
    line("SET_IOMMU %s type=%lu = %s", hname(c), type, res(rc, errno));
}

static void op_check_extension(void) {
    struct handle *c = choose(K_CONTAINER, 15);
    static const unsigned long exts[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 100};
    unsigned long ext = exts[pick(sizeof exts / sizeof exts[0])];
    int rc = ioctl(hfd(c), VFIO_CHECK_EXTENSION, ext);
    line("CHECK_EXTENSION %s ext=%lu = %s", hname(c), ext, res(rc, errno));
}

static void op_get_api_version(void) {
    struct handle *c = choose(K_CONTAINER, 25);
    int rc = ioctl(hfd(c), VFIO_GET_API_VERSION);
    line("GET_API_VERSION %s = %s", hname(c), res(rc, errno));
}

/* A role, and a name for GET_DEVICE_FD with its logical spelling. */
static void pick_device_name(char *name, size_t len, char *logical, size_t llen, struct handle *g) {
    unsigned v = pick(12);
    int r = -1;
    if (g && g->kind == K_GROUP) {
        const char *paren = strchr(g->name, '(');
        for (int i = 0; paren && i < nroles; i++) {
            size_t n = strlen(roles[i].name);
            const char *role = strncmp(paren + 1, "dup:", 4) == 0 ? paren + 5 : paren + 1;
            if (strncmp(role, roles[i].name, n) == 0 && role[n] == ')') r = i;
        }
    }
    if (v == 0 || nroles == 0) { snprintf(name, len, "0000:ff:1f.7"); snprintf(logical, llen, "bogus"); return; }
    if (v == 1) { name[0] = 0; snprintf(logical, llen, "empty"); return; }
    if (v <= 3 || r < 0) r = (int)pick((unsigned)nroles);  /* maybe another group's device */
    struct role *ro = &roles[r];
    int m = (int)pick((unsigned)ro->nmembers);
    snprintf(name, len, "%s", ro->members[m]);
    snprintf(logical, llen, "%s.%d", ro->name, m);
}

static void op_get_device_fd(void) {
    struct handle *g = choose(K_GROUP, 10);
    if (chance(4)) {
        int rc = ioctl(hfd(g), VFIO_GROUP_GET_DEVICE_FD, NULL);
        line("GROUP_GET_DEVICE_FD %s NULL = %s", hname(g), res(rc, errno));
        return;
    }
    char name[64], logical[48];
    pick_device_name(name, sizeof name, logical, sizeof logical, g);
    int fd = ioctl(hfd(g), VFIO_GROUP_GET_DEVICE_FD, name);
    if (fd < 0) { line("GROUP_GET_DEVICE_FD %s %s = %s", hname(g), logical, res(-1, errno)); return; }
    line("GROUP_GET_DEVICE_FD %s %s = %s", hname(g), logical, add_handle(fd, K_DEVICE, logical));
}

/* IOMMU_GET_INFO: the header, the chain's capability ids and their contents. */
static void op_iommu_get_info(void) {
    struct handle *c = choose(K_CONTAINER, 10);
    union { struct vfio_iommu_type1_info info; uint8_t raw[512]; } u;
    memset(&u, 0, sizeof u);
    static const unsigned sizes[] = {16, 20, 24, 40, 512, 8};
    unsigned argsz = sizes[pick(sizeof sizes / sizeof sizes[0])];
    u.info.argsz = argsz;
    int rc = ioctl(hfd(c), VFIO_IOMMU_GET_INFO, &u);
    if (rc < 0) { line("IOMMU_GET_INFO %s argsz=%u = %s", hname(c), argsz, res(rc, errno)); return; }
    char caps[256] = "";
    size_t used = 0;
    if (argsz >= 24 && (u.info.flags & VFIO_IOMMU_INFO_CAPS) && u.info.cap_offset) {
        uint32_t off = u.info.cap_offset;
        for (int guard = 0; off && off + 8 <= sizeof u.raw && guard < 8; guard++) {
            struct vfio_info_cap_header *hdr = (void *)(u.raw + off);
            if (hdr->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
                struct vfio_iommu_type1_info_cap_iova_range *r = (void *)hdr;
                used += (size_t)snprintf(caps + used, sizeof caps - used, " iova_range[%u]", r->nr_iovas);
                for (uint32_t k = 0; k < r->nr_iovas && k < 4 && used < sizeof caps; k++)
                    used += (size_t)snprintf(caps + used, sizeof caps - used, " %#llx-%#llx",
                                             (unsigned long long)r->iova_ranges[k].start,
                                             (unsigned long long)r->iova_ranges[k].end);
            } else if (hdr->id == VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION) {
                struct vfio_iommu_type1_info_cap_migration *m = (void *)hdr;
                used += (size_t)snprintf(caps + used, sizeof caps - used, " migration(flags=%#x pgsizes=%#llx max=%#llx)",
                                         m->flags, (unsigned long long)m->pgsize_bitmap,
                                         (unsigned long long)m->max_dirty_bitmap_size);
            } else if (hdr->id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
                struct vfio_iommu_type1_info_dma_avail *a = (void *)hdr;
                used += (size_t)snprintf(caps + used, sizeof caps - used, " dma_avail(%u)", a->avail);
            } else {
                used += (size_t)snprintf(caps + used, sizeof caps - used, " cap%u", hdr->id);
            }
            if (used >= sizeof caps) break;
            off = hdr->next;
        }
    }
    line("IOMMU_GET_INFO %s argsz=%u = %d flags=%#x pgsizes=%#llx argsz=%u%s", hname(c), argsz, rc,
         u.info.flags, (unsigned long long)u.info.iova_pgsizes, u.info.argsz, caps);
}

static const uint64_t iovas[] = {
    0, 0x1000, 0x2000, 0x3000, 0x10000, 0x100000, 0x800, 0xfee00000, 0xfedff000,
    1ULL << 48, 0xfffffffffffff000ULL, 0x4000,
};
static const uint64_t sizes[] = {0x1000, 0x2000, 0x4000, 0x10000, 0, 0x800, 0x1000, 0x3000};

static void op_map_dma(void) {
    struct handle *c = choose(K_CONTAINER, 5);
    struct vfio_iommu_type1_dma_map map;
    memset(&map, 0, sizeof map);
    map.argsz = chance(5) ? 8 : sizeof map;
    uint64_t iova = iovas[pick(sizeof iovas / sizeof iovas[0])];
    uint64_t size = sizes[pick(sizeof sizes / sizeof sizes[0])];
    unsigned page = pick(BUF_PAGES);
    char where[32];
    unsigned v = pick(20);
    if (v == 0) { map.vaddr = 0; snprintf(where, sizeof where, "NULL"); }
    else if (v == 1) { map.vaddr = (uintptr_t)ro_page; snprintf(where, sizeof where, "ro"); }
    else if (v == 2) { map.vaddr = (uintptr_t)guard_page; snprintf(where, sizeof where, "guard"); }
    else if (v == 3) { map.vaddr = (uintptr_t)(rw_buf + 0x10); snprintf(where, sizeof where, "buf+0x10"); }
    else if (v == 4) {  /* runs past the end of the window into the guard */
        map.vaddr = (uintptr_t)(rw_buf + (BUF_PAGES - 1) * PAGE);
        snprintf(where, sizeof where, "buf+%#llx", (unsigned long long)((BUF_PAGES - 1) * PAGE));
    } else {
        map.vaddr = (uintptr_t)(rw_buf + page * PAGE);
        snprintf(where, sizeof where, "buf+%#llx", (unsigned long long)(page * PAGE));
        if (map.vaddr + size > (uintptr_t)(rw_buf + BUF_PAGES * PAGE)) {
            map.vaddr = (uintptr_t)rw_buf;
            snprintf(where, sizeof where, "buf+0");
        }
    }
    map.iova = iova;
    map.size = size;
    static const uint32_t flagsets[] = {
        VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE, VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
        VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE, 0, 0x80 | VFIO_DMA_MAP_FLAG_READ,
    };
    map.flags = flagsets[pick(sizeof flagsets / sizeof flagsets[0])];
    if (chance(3)) {
        int rc = ioctl(hfd(c), VFIO_IOMMU_MAP_DMA, (void *)8);
        line("IOMMU_MAP_DMA %s badptr = %s", hname(c), res(rc, errno));
        return;
    }
    int rc = ioctl(hfd(c), VFIO_IOMMU_MAP_DMA, &map);
    line("IOMMU_MAP_DMA %s argsz=%u flags=%#x iova=%#llx size=%#llx vaddr=%s = %s", hname(c), map.argsz,
         map.flags, (unsigned long long)iova, (unsigned long long)size, where, res(rc, errno));
}

static void op_unmap_dma(void) {
    struct handle *c = choose(K_CONTAINER, 5);
    struct vfio_iommu_type1_dma_unmap unmap;
    memset(&unmap, 0, sizeof unmap);
    unmap.argsz = chance(5) ? 8 : sizeof unmap;
    unsigned v = pick(10);
    if (v == 0) {
        unmap.flags = VFIO_DMA_UNMAP_FLAG_ALL;
    } else {
        unmap.iova = iovas[pick(sizeof iovas / sizeof iovas[0])];
        unmap.size = v == 1 ? 0x100000 : sizes[pick(sizeof sizes / sizeof sizes[0])];
        if (v == 2) unmap.flags = 0x40;
        if (v == 3) unmap.flags = VFIO_DMA_UNMAP_FLAG_ALL;
    }
    uint64_t iova = unmap.iova, size = unmap.size;
    uint32_t flags = unmap.flags, argsz = unmap.argsz;
    int rc = ioctl(hfd(c), VFIO_IOMMU_UNMAP_DMA, &unmap);
    if (rc < 0) {
        line("IOMMU_UNMAP_DMA %s argsz=%u flags=%#x iova=%#llx size=%#llx = %s", hname(c), argsz, flags,
             (unsigned long long)iova, (unsigned long long)size, res(rc, errno));
        return;
    }
    line("IOMMU_UNMAP_DMA %s argsz=%u flags=%#x iova=%#llx size=%#llx = %d unmapped=%#llx", hname(c), argsz,
         flags, (unsigned long long)iova, (unsigned long long)size, rc, (unsigned long long)unmap.size);
}

static void op_device_get_info(void) {
    struct handle *d = choose(K_DEVICE, 10);
    struct vfio_device_info info;
    memset(&info, 0, sizeof info);
    info.argsz = chance(10) ? 8 : sizeof info;
    unsigned argsz = info.argsz;
    int rc = ioctl(hfd(d), VFIO_DEVICE_GET_INFO, &info);
    if (rc < 0) { line("DEVICE_GET_INFO %s argsz=%u = %s", hname(d), argsz, res(rc, errno)); return; }
    line("DEVICE_GET_INFO %s argsz=%u = %d flags=%#x regions=%u irqs=%u", hname(d), argsz, rc, info.flags,
         info.num_regions, info.num_irqs);
}

static void op_region_info(void) {
    struct handle *d = choose(K_DEVICE, 10);
    struct vfio_region_info info;
    memset(&info, 0, sizeof info);
    info.argsz = chance(8) ? 8 : sizeof info;
    info.index = pick(11);
    unsigned argsz = info.argsz, index = info.index;
    int rc = ioctl(hfd(d), VFIO_DEVICE_GET_REGION_INFO, &info);
    if (rc < 0) {
        line("DEVICE_GET_REGION_INFO %s argsz=%u index=%u = %s", hname(d), argsz, index, res(rc, errno));
        return;
    }
    line("DEVICE_GET_REGION_INFO %s argsz=%u index=%u = %d flags=%#x size=%#llx offset=%#llx", hname(d),
         argsz, index, rc, info.flags, (unsigned long long)info.size, (unsigned long long)info.offset);
}

static void op_unknown_ioctl(void) {
    struct handle *h = choose(K_GROUP, 70);
    static const unsigned long cmds[] = {
        _IO(VFIO_TYPE, VFIO_BASE + 60), _IO(VFIO_TYPE, VFIO_BASE + 19), _IO('x', 1), TCGETS,
    };
    static const char *names[] = {"vfio+60", "vfio+19", "x:1", "TCGETS"};
    unsigned k = pick(4);
    struct termios t;
    int rc = ioctl(hfd(h), cmds[k], &t);
    line("ioctl %s %s = %s", hname(h), names[k], res(rc, errno));
}

/* The usual start of a VFIO user, so sequences get past the first steps often. */
static void op_setup(void) {
    last_added = NULL;
    op_open_container();
    struct handle *c = last_added;
    if (!c) return;
    last_added = NULL;
    op_open_group();
    struct handle *g = last_added;
    if (!g) return;
    int fd = c->fd;
    int rc = ioctl(g->fd, VFIO_GROUP_SET_CONTAINER, &fd);
    line("GROUP_SET_CONTAINER %s %s = %s", g->name, c->name, res(rc, errno));
    unsigned long type = chance(75) ? VFIO_TYPE1v2_IOMMU : VFIO_TYPE1_IOMMU;
    rc = ioctl(c->fd, VFIO_SET_IOMMU, type);
    line("SET_IOMMU %s type=%lu = %s", c->name, type, res(rc, errno));
    rc = ioctl(c->fd, VFIO_CHECK_EXTENSION, (unsigned long)VFIO_DMA_CC_IOMMU);
    line("CHECK_EXTENSION %s ext=%lu = %s", c->name, (unsigned long)VFIO_DMA_CC_IOMMU, res(rc, errno));
}

struct op { void (*fn)(void); unsigned weight; };
static const struct op ops[] = {
    {op_open_container, 6}, {op_open_group, 10}, {op_open_null, 1}, {op_close, 7}, {op_dup, 2},
    {op_get_status, 7}, {op_set_container, 10}, {op_unset_container, 4}, {op_set_iommu, 6},
    {op_check_extension, 5}, {op_get_api_version, 2}, {op_get_device_fd, 9},
    {op_iommu_get_info, 4}, {op_map_dma, 10}, {op_unmap_dma, 7}, {op_device_get_info, 3},
    {op_region_info, 5}, {op_unknown_ioctl, 3}, {op_setup, 4}, {op_open_iommufd, 2}, {op_fd_limit, 1},
};

/* ---- the directed sequence (-s 0): every path the version table names, and the errno paths
 * of docs/ERRORS.md a user can reach, in a fixed order, so none depends on a seed finding it ---- */

static struct handle *d_open(const char *path, const char *label, enum kind kind, const char *what) {
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) { line("open %s = %s", label, res(-1, errno)); return NULL; }
    const char *name = add_handle(fd, kind, what);
    line("open %s = %s", label, name);
    return last_added;
}

static struct handle *d_group(const char *role) {
    for (int i = 0; i < nroles; i++) {
        if (strcmp(roles[i].name, role) != 0) continue;
        char path[64], label[48];
        snprintf(path, sizeof path, "/dev/vfio/%s%d", roles[i].noiommu ? "noiommu-" : "", roles[i].group);
        snprintf(label, sizeof label, "group:%s", role);
        return d_open(path, label, K_GROUP, role);
    }
    return NULL;
}

static void d_set_container(struct handle *g, struct handle *c) {
    int fd = hfd(c);
    int rc = ioctl(hfd(g), VFIO_GROUP_SET_CONTAINER, &fd);
    line("GROUP_SET_CONTAINER %s %s = %s", hname(g), hname(c), res(rc, errno));
}

static void d_simple(const char *what, struct handle *h, unsigned long cmd, unsigned long arg, const char *args) {
    int rc = ioctl(hfd(h), cmd, arg);
    line("%s %s%s = %s", what, hname(h), args, res(rc, errno));
}

static void d_map(struct handle *c, uint64_t iova, uint64_t size, uint64_t vaddr, const char *where, uint32_t flags) {
    struct vfio_iommu_type1_dma_map map = {.argsz = sizeof map, .flags = flags, .vaddr = vaddr, .iova = iova, .size = size};
    int rc = ioctl(hfd(c), VFIO_IOMMU_MAP_DMA, &map);
    line("IOMMU_MAP_DMA %s argsz=%u flags=%#x iova=%#llx size=%#llx vaddr=%s = %s", hname(c), map.argsz, flags,
         (unsigned long long)iova, (unsigned long long)size, where, res(rc, errno));
}

static void d_unmap(struct handle *c, uint64_t iova, uint64_t size, uint32_t flags) {
    struct vfio_iommu_type1_dma_unmap unmap = {.argsz = sizeof unmap, .flags = flags, .iova = iova, .size = size};
    int rc = ioctl(hfd(c), VFIO_IOMMU_UNMAP_DMA, &unmap);
    if (rc < 0)
        line("IOMMU_UNMAP_DMA %s argsz=%u flags=%#x iova=%#llx size=%#llx = %s", hname(c), unmap.argsz, flags,
             (unsigned long long)iova, (unsigned long long)size, res(rc, errno));
    else
        line("IOMMU_UNMAP_DMA %s argsz=%u flags=%#x iova=%#llx size=%#llx = %d unmapped=%#llx", hname(c),
             unmap.argsz, flags, (unsigned long long)iova, (unsigned long long)size, rc,
             (unsigned long long)unmap.size);
}

static struct handle *d_device(struct handle *g, const char *role, int member) {
    for (int i = 0; i < nroles; i++) {
        if (strcmp(roles[i].name, role) != 0 || member >= roles[i].nmembers) continue;
        char logical[48];
        snprintf(logical, sizeof logical, "%s.%d", role, member);
        int fd = ioctl(hfd(g), VFIO_GROUP_GET_DEVICE_FD, roles[i].members[member]);
        if (fd < 0) { line("GROUP_GET_DEVICE_FD %s %s = %s", hname(g), logical, res(-1, errno)); return NULL; }
        const char *name = add_handle(fd, K_DEVICE, logical);
        line("GROUP_GET_DEVICE_FD %s %s = %s", hname(g), logical, name);
        return last_added;
    }
    return NULL;
}

/* Closes a handle; the directed sequence closes only its newest handle (the slot is reused by the
 * last one, which would move a handle another pointer holds). */
static void d_close(struct handle *h) {
    if (!h) return;
    if (h != &handles[nhandles - 1]) { fprintf(stderr, "vfioseq: d_close of an older handle\n"); exit(2); }
    int i = (int)(h - handles);
    int rc = close(h->fd);
    line("close %s = %s", h->name, res(rc, errno));
    handles[i] = handles[--nhandles];
}

static void d_get_info(struct handle *c, unsigned argsz) {
    union { struct vfio_iommu_type1_info info; uint8_t raw[512]; } u;
    memset(&u, 0, sizeof u);
    u.info.argsz = argsz;
    int rc = ioctl(hfd(c), VFIO_IOMMU_GET_INFO, &u);
    if (rc < 0) { line("IOMMU_GET_INFO %s argsz=%u = %s", hname(c), argsz, res(rc, errno)); return; }
    line("IOMMU_GET_INFO %s argsz=%u = %d flags=%#x pgsizes=%#llx argsz=%u", hname(c), argsz, rc, u.info.flags,
         (unsigned long long)u.info.iova_pgsizes, u.info.argsz);
}

/* The node's type, numbers (when fixed by the kernel: misc devices) and mode. */
static void d_stat(const char *path, const char *label, int numbers) {
    struct stat st;
    int rc = stat(path, &st);
    if (rc < 0) { line("stat %s = %s", label, res(rc, errno)); return; }
    char nums[32] = "";
    if (numbers) snprintf(nums, sizeof nums, " %u:%u", major(st.st_rdev), minor(st.st_rdev));
    line("stat %s = %s%s %04o", label, S_ISCHR(st.st_mode) ? "char" : "other", nums, (unsigned)(st.st_mode & 07777));
}

static void directed(void) {
    d_stat("/dev/vfio/vfio", "vfio", 1);
    d_stat("/dev/iommu", "iommu", 1);
    for (int i = 0; i < nroles; i++) {
        if (strcmp(roles[i].name, "one") != 0 || roles[i].group < 0) continue;
        char path[64];
        snprintf(path, sizeof path, "/dev/vfio/%s%d", roles[i].noiommu ? "noiommu-" : "", roles[i].group);
        d_stat(path, "group:one", 0);   /* the group major is dynamic: not compared */
    }
    struct handle *c = d_open("/dev/vfio/vfio", "vfio", K_CONTAINER, NULL);
    struct handle *c2 = d_open("/dev/vfio/vfio", "vfio", K_CONTAINER, NULL);
    struct handle *null = d_open("/dev/null", "null", K_OTHER, "null");
    struct handle *one = d_group("one"), *two = d_group("two"), *nonviable = d_group("nonviable");
    struct handle *again = d_group("one");                                     /* EBUSY */
    d_close(again);
    d_close(d_group("novfio"));                                                /* ENOENT */
    d_close(d_open("/dev/vfio/4000", "group:bogus", K_GROUP, "bogus"));        /* ENOENT */
    struct vfio_group_status st = {.argsz = 4};
    int rc = ioctl(hfd(one), VFIO_GROUP_GET_STATUS, &st);
    line("GROUP_GET_STATUS %s argsz=4 = %s", hname(one), res(rc, errno));    /* EINVAL */
    d_simple("GROUP_GET_STATUS", one, VFIO_GROUP_GET_STATUS, 0, " NULL");      /* EFAULT */
    d_simple("GROUP_SET_CONTAINER", one, VFIO_GROUP_SET_CONTAINER, 0, " NULL"); /* EFAULT */
    d_set_container(one, NULL);                                                /* EBADF */
    d_set_container(one, null);                                                /* EBADFD (6.1: EINVAL) */
    d_set_container(one, two);                                                 /* EBADFD (6.1: EINVAL) */
    d_set_container(nonviable, c);                                             /* EPERM */
    d_simple("GROUP_UNSET_CONTAINER", one, VFIO_GROUP_UNSET_CONTAINER, 0, ""); /* EINVAL */
    d_set_container(one, c);
    d_set_container(one, c2);                                                  /* EINVAL: already set */
    d_device(one, "one", 0);                                                   /* EINVAL: no SET_IOMMU */
    d_simple("SET_IOMMU", c, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_IOMMU, " type=2"); /* ENODEV */
    /* A no-IOMMU group (the no-IOMMU boot) takes the NOIOMMU backend, any other TYPE1v2. */
    int noiommu = 0;
    for (int i = 0; i < nroles; i++) noiommu |= strcmp(roles[i].name, "one") == 0 && roles[i].noiommu;
    unsigned long type = noiommu ? VFIO_NOIOMMU_IOMMU : VFIO_TYPE1v2_IOMMU;
    d_simple("SET_IOMMU", c, VFIO_SET_IOMMU, type, noiommu ? " type=8" : " type=3");
    d_simple("SET_IOMMU", c, VFIO_SET_IOMMU, type, noiommu ? " type=8" : " type=3"); /* EINVAL: already set */
    d_simple("CHECK_EXTENSION", c, VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU, " ext=4");
    d_simple("GET_API_VERSION", c, VFIO_GET_API_VERSION, 0, "");
    d_simple("GET_API_VERSION", one, VFIO_GET_API_VERSION, 0, "");            /* ENOTTY */
    d_get_info(c, 16);
    d_get_info(c, 24);                                                         /* 6.12: argsz 120 */
    d_map(c, 0x10000, 0x4000, (uintptr_t)rw_buf, "buf+0", VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE);
    d_map(c, 0x12000, 0x1000, (uintptr_t)rw_buf, "buf+0", VFIO_DMA_MAP_FLAG_READ);            /* EEXIST */
    d_map(c, 0x20000, 0x1000, (uintptr_t)(rw_buf + 0x10), "buf+0x10", VFIO_DMA_MAP_FLAG_READ); /* EINVAL */
    d_map(c, 0x20000, 0x1000, (uintptr_t)ro_page, "ro", VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE); /* EFAULT */
    d_map(c, 0x20000, 0x1000, (uintptr_t)guard_page, "guard", VFIO_DMA_MAP_FLAG_READ);       /* EFAULT */
    d_map(c, 0xfee00000, 0x1000, (uintptr_t)rw_buf, "buf+0", VFIO_DMA_MAP_FLAG_READ);        /* EINVAL: MSI */
    d_unmap(c, 0x11000, 0x1000, 0);                                            /* v2: EINVAL, bisects */
    d_unmap(c, 0x10000, 0x4000, 0);
    struct handle *d = d_device(one, "one", 0);
    d_close(d_device(two, "one", 0));                                          /* ENODEV: not its group */
    d_simple("DEVICE_GET_INFO", d, VFIO_DEVICE_GET_INFO, 0, " NULL");          /* EFAULT */
    d_simple("IOMMU_GET_INFO", d, VFIO_IOMMU_GET_INFO, 0, " NULL");            /* hot reset info */
    d_simple("IOMMU_MAP_DMA", d, VFIO_IOMMU_MAP_DMA, 0, " NULL");              /* hot reset */
    d_simple("DEVICE_RESET", d, VFIO_DEVICE_RESET, 0, "");                     /* edu: EINVAL */
    d_simple("ioctl", d, _IO(VFIO_TYPE, VFIO_BASE + 60), 0, " vfio+60");       /* ENOTTY */
    d_simple("GROUP_UNSET_CONTAINER", one, VFIO_GROUP_UNSET_CONTAINER, 0, ""); /* EBUSY: device open */
    d_close(d);
    d_simple("GROUP_UNSET_CONTAINER", one, VFIO_GROUP_UNSET_CONTAINER, 0, "");
    d_simple("CHECK_EXTENSION", c, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU, " ext=3");
    struct handle *iommufd = d_open("/dev/iommu", "iommu", K_IOMMUFD, NULL);
    if (iommufd) {
        d_get_info(iommufd, 24);                                               /* type1 compat ioctls */
        d_map(iommufd, 0x10000, 0x1000, (uintptr_t)rw_buf, "buf+0", VFIO_DMA_MAP_FLAG_READ);
        d_set_container(one, iommufd);
        d_close(d_device(one, "one", 0));
        d_close(iommufd);
        d_simple("GROUP_UNSET_CONTAINER", one, VFIO_GROUP_UNSET_CONTAINER, 0, "");
    }
    while (nhandles > 0) d_close(&handles[nhandles - 1]);
    (void)c2;
}

/* -U: drop CAP_SYS_RAWIO from the effective set, so no-IOMMU groups answer EPERM (vfio's
 * capable(CAP_SYS_RAWIO) checks read the effective set; so does the model's capget). */
static void drop_rawio(void) {
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &hdr, data)) { perror("capget"); exit(2); }
    data[CAP_TO_INDEX(CAP_SYS_RAWIO)].effective &= ~CAP_TO_MASK(CAP_SYS_RAWIO);
    if (syscall(SYS_capset, &hdr, data)) { perror("capset"); exit(2); }
}

static void usage(void) {
    fprintf(stderr, "usage: vfioseq -S SYSFS -s SEED -n CALLS [-U] -r ROLE=DEVICE [-r ROLE=DEVICE ...]\n");
    exit(2);
}

int main(int argc, char **argv) {
    unsigned long long seed = 1;
    unsigned calls = 100;
    int opt;
    const char *role_args[MAX_ROLES];
    int nrole_args = 0;
    while ((opt = getopt(argc, argv, "S:s:n:r:U")) != -1) {
        switch (opt) {
        case 'U': drop_rawio(); break;
        case 'S': sysfs = optarg; break;
        case 's': seed = strtoull(optarg, NULL, 0); break;
        case 'n': calls = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'r':
            if (nrole_args == MAX_ROLES || !strchr(optarg, '=')) usage();
            role_args[nrole_args++] = optarg;
            break;
        default: usage();
        }
    }
    if (optind != argc) usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0; i < nrole_args; i++) {
        const char *eq = strchr(role_args[i], '=');
        struct role *r = &roles[nroles++];
        snprintf(r->name, sizeof r->name, "%.*s", (int)(eq - role_args[i]), role_args[i]);
        resolve_role(r, eq + 1);
    }
    map_buffers();
    rng_state = seed;
    if (seed == 0) {
        directed();
        return 0;
    }
    unsigned total = 0;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) total += ops[i].weight;
    while (call_no < calls) {
        unsigned w = pick(total);
        size_t i = 0;
        while (w >= ops[i].weight) w -= ops[i++].weight;
        ops[i].fn();
    }
    /* Close what is left, newest first, so the releases are compared too. */
    while (nhandles > 0) {
        struct handle *h = &handles[--nhandles];
        int rc = close(h->fd);
        line("close %s = %s", h->name, res(rc, errno));
    }
    return 0;
}
