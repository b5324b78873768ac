// SPDX-License-Identifier: Apache-2.0
/* mmap of a device fd's regions as clients use it, through the interposer: DPDK reserves address
 * space with a PROT_NONE anonymous mapping and maps each mappable BAR over it with
 * MAP_SHARED|MAP_FIXED, unmaps and maps again on release; QEMU passes no address. The built-in
 * vfio-pci places the mapping where mmap(2) would; every refusal has the kernel's errno (the mm
 * layer's checks, then vfio_pci_core_mmap()'s). Its own topology (set before the first model path):
 * BAR0 16 KiB memory, BAR1 an I/O BAR, BAR2 a 64-bit 64 KiB memory BAR (BAR3 its upper half). */
#include "tp.h"
#include <fcntl.h>
#include <linux/vfio.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define REGION(i, off) (((off_t)(i) << 40) + (off))
#define BAR0_SIZE 16384
#define BAR2_SIZE 65536
#define PAGE 4096

static const char *topology =
    "{ \"iommu_groups\": [ { \"id\": 40, \"devices\": [ { \"name\": \"0000:40:00.0\", \"driver\": \"vfio-pci\", "
    "\"bars\": [16384, {\"size\": 32, \"type\": \"io\"}, {\"size\": 65536, \"type\": \"mem64\"}] } ] } ] }\n";

/* An address range nothing is mapped at (a reservation made and given back). */
static unsigned char *free_range(size_t len) {
    void *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED, "reserve: %s", tp_errname(errno));
    munmap(p, len);
    return p;
}

static int mapped(void *addr, size_t len) {
    unsigned char vec[64];
    return mincore(addr, len, vec) == 0;
}

static int open_device(int *c, int *g) {
    *c = OK(open("/dev/vfio/vfio", O_RDWR));
    *g = OK(open("/dev/vfio/40", O_RDWR));
    EQ(ioctl(*g, VFIO_GROUP_SET_CONTAINER, c), 0);
    EQ(ioctl(*c, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU), 0);
    return OK(ioctl(*g, VFIO_GROUP_GET_DEVICE_FD, "0000:40:00.0"));
}

/* DPDK's way: one PROT_NONE reservation, each mappable BAR MAP_FIXED over its part. */
static void fixed_over_reservation(int d) {
    size_t total = BAR0_SIZE + BAR2_SIZE;
    unsigned char *base = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(base != MAP_FAILED, "reservation: %s", tp_errname(errno));
    unsigned char *b0 = mmap(base, BAR0_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, d, REGION(0, 0));
    CHECK(b0 == base, "BAR0 at %p, asked %p (%s)", (void *)b0, (void *)base, tp_errname(errno));
    unsigned char *b2 = mmap64(base + BAR0_SIZE, BAR2_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, d,
                               REGION(2, 0));
    CHECK(b2 == base + BAR0_SIZE, "BAR2 at %p, asked %p (%s)", (void *)b2, (void *)(base + BAR0_SIZE),
          tp_errname(errno));
    if (b0 != base || b2 != base + BAR0_SIZE) return;
    /* The mappings are the BARs: what one side writes the other reads. */
    b0[100] = 0x5a;
    b2[BAR2_SIZE - 1] = 0xa5;
    unsigned char byte = 0;
    EQ(pread(d, &byte, 1, REGION(0, 100)), 1);
    EQ(byte, 0x5a);
    EQ(pread(d, &byte, 1, REGION(2, BAR2_SIZE - 1)), 1);
    EQ(byte, 0xa5);
    byte = 0x33;
    EQ(pwrite(d, &byte, 1, REGION(0, 200)), 1);
    EQ(b0[200], 0x33);

    /* Release and probe again (DPDK unmaps and maps again): the BAR keeps its bytes, at the same
     * address over a fresh reservation, and in a second mapping at the same time. */
    EQ(munmap(base, total), 0);
    base = mmap(base, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK(base != MAP_FAILED, "reservation again: %s", tp_errname(errno));
    b0 = mmap(base, BAR0_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, d, REGION(0, 0));
    CHECK(b0 == base, "BAR0 again at %p (%s)", (void *)b0, tp_errname(errno));
    if (b0 != base) return;
    EQ(b0[100], 0x5a);
    EQ(b0[200], 0x33);
    unsigned char *second = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, d, REGION(0, 0));
    CHECK(second != MAP_FAILED, "second mapping: %s", tp_errname(errno));
    if (second != MAP_FAILED) {
        b0[300] = 0x77;
        EQ(second[300], 0x77);
        EQ(second[100], 0x5a);
        EQ(munmap(second, PAGE), 0);
    }
    /* Part of a BAR, at a page offset. */
    unsigned char *part = mmap(base + BAR0_SIZE, PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, d, REGION(2, 15 * PAGE));
    CHECK(part == base + BAR0_SIZE, "BAR2's last page at %p (%s)", (void *)part, tp_errname(errno));
    if (part == base + BAR0_SIZE) EQ(part[PAGE - 1], 0xa5);
    EQ(munmap(base, total), 0);
}

/* A hint is honoured when the range is free, as by mmap(2); MAP_FIXED_NOREPLACE never replaces. */
static void hints(int d) {
    unsigned char *want = free_range(BAR0_SIZE);
    unsigned char *m = mmap(want, BAR0_SIZE, PROT_READ, MAP_SHARED, d, REGION(0, 0));
    CHECK(m == want, "hint %p, got %p (%s)", (void *)want, (void *)m, tp_errname(errno));
    if (m != MAP_FAILED) EQ(m[100], 0x5a);
    /* The same hint again: taken, so the mapping goes elsewhere. */
    unsigned char *elsewhere = mmap(want, BAR0_SIZE, PROT_READ, MAP_SHARED, d, REGION(0, 0));
    CHECK(elsewhere != MAP_FAILED && elsewhere != want, "taken hint: %p", (void *)elsewhere);
    if (elsewhere != MAP_FAILED) munmap(elsewhere, BAR0_SIZE);
    /* NOREPLACE over a mapping: EEXIST, and the mapping stays. */
    errno = 0;
    CHECK(mmap(want, PAGE, PROT_READ, MAP_SHARED | MAP_FIXED_NOREPLACE, d, REGION(0, 0)) == MAP_FAILED &&
              errno == EEXIST,
          "MAP_FIXED_NOREPLACE over a mapping: %s", tp_errname(errno));
    CHECK(mapped(want, BAR0_SIZE), "the mapping NOREPLACE refused is gone");
    if (m != MAP_FAILED) munmap(m, BAR0_SIZE);
    /* NOREPLACE on a free range: exactly there. */
    m = mmap(want, PAGE, PROT_READ, MAP_SHARED | MAP_FIXED_NOREPLACE, d, REGION(0, 0));
    CHECK(m == want, "MAP_FIXED_NOREPLACE at %p, got %p (%s)", (void *)want, (void *)m, tp_errname(errno));
    if (m != MAP_FAILED) munmap(m, PAGE);
}

#define REFUSED(err, addr, len, flags, off)                                                                \
    do {                                                                                                   \
        errno = 0;                                                                                         \
        void *r_ = mmap((addr), (len), PROT_READ | PROT_WRITE, (flags), d, (off));                         \
        CHECK(r_ == MAP_FAILED && errno == (err), "mmap(%s, %s, %s, %s) = %p, %s; want %s", #addr, #len,   \
              #flags, #off, r_, tp_errname(errno), tp_errname(err));                                       \
        if (r_ != MAP_FAILED) munmap(r_, (len));                                                           \
    } while (0)

/* Each refusal, with the kernel's errno. */
static void refusals(int d) {
    /* The mm layer's checks, before the driver. */
    REFUSED(EINVAL, NULL, 0, MAP_SHARED, REGION(0, 0));                      /* no length */
    REFUSED(EINVAL, NULL, PAGE, MAP_SHARED, REGION(0, 1));                   /* offset not page aligned */
    REFUSED(EINVAL, NULL, PAGE, 0, REGION(0, 0));                            /* neither shared nor private */
    unsigned char *spot = free_range(PAGE);
    REFUSED(EINVAL, spot + 1, PAGE, MAP_SHARED | MAP_FIXED, REGION(0, 0));   /* fixed, not aligned */
    REFUSED(EPERM, NULL, PAGE, MAP_SHARED | MAP_FIXED, REGION(0, 0));        /* fixed at NULL */
    /* vfio-pci's (vfio_pci_core_mmap). */
    REFUSED(EINVAL, NULL, PAGE, MAP_PRIVATE, REGION(0, 0));                  /* VM_SHARED required */
    REFUSED(EINVAL, NULL, BAR0_SIZE + PAGE, MAP_SHARED, REGION(0, 0));       /* past the BAR */
    REFUSED(EINVAL, NULL, 2 * PAGE, MAP_SHARED, REGION(0, BAR0_SIZE - PAGE)); /* runs past the end */
    REFUSED(EINVAL, NULL, PAGE, MAP_SHARED, REGION(0, BAR0_SIZE));           /* starts at the end */
    REFUSED(EINVAL, NULL, PAGE, MAP_SHARED, REGION(1, 0));                   /* an I/O BAR: no MMAP flag */
    REFUSED(EINVAL, NULL, PAGE, MAP_SHARED, REGION(3, 0));                   /* BAR2's upper half: no BAR */
    REFUSED(EINVAL, NULL, PAGE, MAP_SHARED, REGION(5, 0));                   /* no BAR5 */
    REFUSED(EINVAL, NULL, PAGE, MAP_SHARED, REGION(VFIO_PCI_ROM_REGION_INDEX, 0));
    REFUSED(EINVAL, NULL, PAGE, MAP_SHARED, REGION(VFIO_PCI_CONFIG_REGION_INDEX, 0));
    REFUSED(EINVAL, NULL, PAGE, MAP_SHARED, REGION(VFIO_PCI_NUM_REGIONS, 0)); /* no such region */
    /* The regions that refuse are the ones REGION_INFO gives no MMAP flag. */
    for (unsigned i = 0; i < VFIO_PCI_NUM_REGIONS; i++) {
        struct vfio_region_info info = { .argsz = sizeof info, .index = i };
        if (ioctl(d, VFIO_DEVICE_GET_REGION_INFO, &info) != 0) continue; /* VGA: none */
        void *m = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, d, REGION(i, 0));
        int mmapable = info.size > 0 && (info.flags & VFIO_REGION_INFO_FLAG_MMAP);
        CHECK((m != MAP_FAILED) == mmapable, "region %u: flags 0x%x size %llu, mmap %s", i, info.flags,
              (unsigned long long)info.size, m == MAP_FAILED ? tp_errname(errno) : "ok");
        if (m != MAP_FAILED) munmap(m, PAGE);
    }
    /* As in the kernel, a MAP_FIXED mapping the device refuses leaves the range unmapped (the old
     * mapping went before the driver was asked); one the mm layer refuses leaves it as it was. */
    unsigned char *r = mmap(NULL, 2 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(r != MAP_FAILED, "reservation");
    REFUSED(EINVAL, r, PAGE, MAP_SHARED | MAP_FIXED, REGION(VFIO_PCI_CONFIG_REGION_INDEX, 0));
    CHECK(!mapped(r, PAGE), "the range a refused MAP_FIXED named is still mapped");
    REFUSED(EINVAL, r + PAGE, PAGE, MAP_SHARED | MAP_FIXED, REGION(0, 1));
    CHECK(mapped(r + PAGE, PAGE), "an mm-layer refusal unmapped the range");
    munmap(r, 2 * PAGE);
    /* Not a device fd: ENODEV (the group has no mmap), after the flags are checked. */
}

int main(void) {
    tp_require_preload();
    char path[] = "/tmp/swiftvfio-test-mmap-XXXXXX";
    int tfd = mkstemp(path);
    CHECK(tfd >= 0, "mkstemp");
    CHECK(write(tfd, topology, strlen(topology)) == (ssize_t)strlen(topology), "write topology");
    close(tfd);
    setenv("SWIFTVFIO_TOPOLOGY", path, 1); /* read when the first model path loads the model */

    int c, g;
    int d = open_device(&c, &g);
    unlink(path);
    fixed_over_reservation(d);
    hints(d);
    refusals(d);
    {
        errno = 0;
        void *r = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, g, 0);
        CHECK(r == MAP_FAILED && errno == ENODEV, "mmap of a group fd: %s", tp_errname(errno));
        errno = 0;
        r = mmap(NULL, PAGE, PROT_READ, 0, g, 0);
        CHECK(r == MAP_FAILED && errno == EINVAL, "mmap of a group fd, no type: %s", tp_errname(errno));
    }
    /* A mapping outlives the device fd, and the BAR keeps its bytes for the next open. */
    unsigned char *keep = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, d, REGION(0, 0));
    CHECK(keep != MAP_FAILED, "mmap: %s", tp_errname(errno));
    OK(close(d));
    d = OK(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:40:00.0"));
    unsigned char *again = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, d, REGION(0, 0));
    CHECK(again != MAP_FAILED, "mmap after reopen: %s", tp_errname(errno));
    if (keep != MAP_FAILED && again != MAP_FAILED) {
        EQ(keep[100], 0x5a);
        EQ(again[100], 0x5a);
        munmap(again, PAGE);
    }
    if (keep != MAP_FAILED) munmap(keep, PAGE);
    OK(close(d));
    OK(close(g));
    OK(close(c));
    return tp_done();
}
