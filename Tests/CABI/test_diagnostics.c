// SPDX-License-Identifier: Apache-2.0
/* Nothing silent (issue 18 item 4): an unusable SWIFTVFIO_TRACE path is an error message on
 * standard error; missing kvm_get_kvm_safe/kvm_put_kvm is one message on standard error naming
 * the fix; swiftvfio_log() returns the kernel log's text (WARNs included), not only the count; a
 * topology with no VFIO groups says why. This program exports no KVM symbols. */
#include "cabi_test.h"

static char fake_vm[64]; /* never dereferenced by the library */
static char stderr_path[64];
static int saved_stderr = -1;

/* Standard error goes to a temporary file from here on; returns its content so far. */
static void capture_stderr(void)
{
    int fd;
    snprintf(stderr_path, sizeof(stderr_path), "/tmp/swiftvfio-stderr-XXXXXX");
    fd = mkstemp(stderr_path);
    CHECK(fd >= 0);
    fflush(stderr);
    saved_stderr = dup(2);
    CHECK(dup2(fd, 2) == 2);
    close(fd);
}

static char *captured(void)
{
    static char text[16384];
    FILE *f = fopen(stderr_path, "r");
    size_t n = 0;
    if (f) {
        n = fread(text, 1, sizeof(text) - 1, f);
        fclose(f);
    }
    text[n] = 0;
    return text;
}

static int count_of(const char *haystack, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(haystack, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static char *log_text(void)
{
    static char buf[16384];
    int n = swiftvfio_log(buf, sizeof(buf));
    CHECK(n >= 0 && n < (int)sizeof(buf));
    return buf;
}

static void test_trace_path_unusable(void)
{
    struct swiftvfio_census census;
    /* The environment is read at the library's first use: this is it. */
    CHECK_EQ(swiftvfio_census(&census), 0);
    CHECK(strstr(captured(), "swiftvfio: SWIFTVFIO_TRACE=/nonexistent-swiftvfio-dir/trace.txt: cannot open for "
                             "appending (ENOENT): the trace is off") != NULL);
    CHECK(strstr(log_text(), "warning: SWIFTVFIO_TRACE=/nonexistent-swiftvfio-dir/trace.txt: cannot open") != NULL);
}

static void test_kvm_symbols_missing(void)
{
    int c, g, d;
    struct file *fg;
    const char *fix = "kvm_get_kvm_safe/kvm_put_kvm not found in the process";

    c = swiftvfio_open("/dev/vfio/vfio", O_RDWR);
    g = swiftvfio_open("/dev/vfio/26", O_RDWR);
    CHECK_EQ(swiftvfio_ioctl(g, VFIO_GROUP_SET_CONTAINER, (unsigned long)&c), 0);
    CHECK_EQ(swiftvfio_ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU), 0);
    fg = swiftvfio_fget(g);
    vfio_file_set_kvm(fg, (struct kvm *)fake_vm);
    CHECK_EQ(count_of(captured(), fix), 0);
    /* Two first opens: two WARNs in the log, one message on standard error. */
    EXPECT_WARNS(1, d = swiftvfio_ioctl(g, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)"0000:06:0d.0"));
    swiftvfio_close(d);
    EXPECT_WARNS(1, d = swiftvfio_ioctl(g, VFIO_GROUP_GET_DEVICE_FD, (unsigned long)"0000:06:0d.0"));
    swiftvfio_close(d);
    CHECK_EQ(count_of(captured(), fix), 1);
    CHECK(strstr(captured(), "link the program with -rdynamic") != NULL);
    /* The log's text says it too, per open, as a WARNING line. */
    CHECK(strstr(log_text(), "WARNING: ") != NULL);
    CHECK_EQ(count_of(log_text(), "kvm_put_kvm/kvm_get_kvm_safe not found: 0000:06:0d.0 gets no VM reference "
                                  "(define and export them in the program: link it with -rdynamic)"), 2);
    vfio_file_set_kvm(fg, NULL);
    swiftvfio_fput(fg);
    swiftvfio_close(g);
    swiftvfio_close(c);
    CHECK_NOTHING_OPEN();
}

static void test_log_buffer(void)
{
    char small[8];
    int whole = swiftvfio_log(NULL, 0);
    CHECK(whole > 0);
    memset(small, 'x', sizeof(small));
    CHECK_EQ(swiftvfio_log(small, sizeof(small)), whole);   /* truncated, NUL-terminated */
    CHECK_EQ(small[7], 0);
    CHECK_EQ(strlen(small), 7);
    CHECK_EQ(swiftvfio_log((char *)8, 16), -EFAULT);
    CHECK_LAST_ERROR("swiftvfio_log: EFAULT: buf is not writable");
}

static void test_no_vfio_groups_says_why(void)
{
    char state[4096];
    const char *path;

    path = cabi_temp_file("{ \"iommu_groups\": [ { \"id\": 3, \"devices\": [ { \"name\": \"0000:01:00.0\", \"driver\": \"e1000e\" } ] } ] }");
    CHECK_EQ(swiftvfio_topology_load(path), 0);
    CHECK(swiftvfio_state(state, sizeof(state)) > 0);
    CHECK(strstr(state, "no VFIO groups: 1 IOMMU group(s) but no device bound to vfio-pci (drivers bound: e1000e)") != NULL);
    CHECK(strstr(log_text(), ": no VFIO groups: 1 IOMMU group(s) but no device bound to vfio-pci") != NULL);
    unlink(path);

    path = cabi_temp_file("{ \"iommu_groups\": [] }");
    CHECK_EQ(swiftvfio_topology_load(path), 0);
    CHECK(swiftvfio_state(state, sizeof(state)) > 0);
    CHECK(strstr(state, "no VFIO groups: no IOMMU groups") != NULL);
    unlink(path);
    CHECK_EQ(swiftvfio_topology_load(NULL), 0);
}

int main(void)
{
    setenv("SWIFTVFIO_TRACE", "/nonexistent-swiftvfio-dir/trace.txt", 1);
    unsetenv("SWIFTVFIO_LOG");
    capture_stderr();
    test_trace_path_unusable();
    test_kvm_symbols_missing();
    test_log_buffer();
    test_no_vfio_groups_says_why();
    /* Standard error back, with what went to it (failure messages included). */
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    fputs(captured(), stderr);
    unlink(stderr_path);
    return cabi_summary();
}
