// SPDX-License-Identifier: Apache-2.0
/* Which paths name model nodes: lexical classification, no file system access except the
 * directory a relative path starts from.
 *
 * | path                                     | model node                          |
 * | /dev/vfio                                | the directory (stat only)           |
 * | /dev/vfio/vfio, /dev/vfio/<N>, noiommu-N | container, group N                  |
 * | /dev/iommu                               | iommufd (when the topology has it)  |
 * | /dev/vfio/<other>, below a node          | ENOENT / ENOTDIR, as the kernel     |
 * | /sys/module/vfio, vfio_* and below       | P_MODULE: the model's module files  |
 * |                                          | (calls_module.c), the host's others |
 *
 * The fast test (maybe_model_path, preload.h) looks for "io": lexical normalisation only removes
 * components, so an absolute model path always spells "vfio" or "iommu". A relative one is
 * resolved against its directory, which can only be inside /dev/vfio when the host has a real one;
 * then a last component that looks like a node name is a candidate too. */
#include "preload.h"

#include <limits.h>

_Static_assert(sizeof(((struct model_path *)0)->node) == PATH_MAX, "a node path is a path");

static int node_like(const char *name) {
    if (strcmp(name, "vfio") == 0) return 1;
    if (strncmp(name, "noiommu-", 8) == 0) name += 8;
    if (*name == 0) return 0;
    for (; *name; name++)
        if (*name < '0' || *name > '9') return 0;
    return 1;
}

/* `io` is the first "io" in `path`, or NULL. */
int maybe_model_path_slow(const char *path, const char *io) {
    /* "vfio" and "iommu" share "io": a look at the bytes around each hit. */
    for (const char *p = io; p != NULL; p = strstr(p + 1, "io")) {
        if ((p - path >= 2 && p[-2] == 'v' && p[-1] == 'f') || (p[2] == 'm' && p[3] == 'm' && p[4] == 'u')) return 1;
    }
    if (path[0] == '/' || !real_dev_vfio_exists) return 0;
    const char *last = strrchr(path, '/');
    return node_like(last ? last + 1 : path);
}

/* Resolves `path` (relative to `dirfd`) lexically into `out`. */
void classify(int dirfd, const char *path, struct model_path *out) {
    char joined[2 * PATH_MAX];
    out->kind = P_NOT_OURS;
    out->must_be_dir = 0;
    size_t plen = strlen(path);
    if (plen == 0 || plen >= PATH_MAX) return;
    if (path[0] == '/') {
        memcpy(joined, path, plen + 1);
    } else {
        char base[PATH_MAX];
        if (dirfd == AT_FDCWD) {
            if (getcwd(base, sizeof base) == NULL) return;
        } else {
            char link[64];
            snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
            ssize_t n = readlink(link, base, sizeof base - 1);
            if (n <= 0) return;
            base[n] = 0;
            if (base[0] != '/') return; /* not a directory in the file system */
        }
        if (snprintf(joined, sizeof joined, "%s/%s", base, path) >= (int)sizeof joined) return;
    }
    /* Normalise: drop empty and "." components, ".." pops one. */
    char norm[PATH_MAX];
    size_t starts[256];
    int depth = 0;
    size_t len = 0;
    const char *p = joined;
    const char *last_component = NULL;
    size_t last_len = 0;
    while (*p) {
        while (*p == '/') p++;
        if (!*p) break;
        const char *s = p;
        while (*p && *p != '/') p++;
        size_t n = (size_t)(p - s);
        last_component = s;
        last_len = n;
        if (n == 1 && s[0] == '.') continue;
        if (n == 2 && s[0] == '.' && s[1] == '.') {
            if (depth > 0) len = starts[--depth];
            continue;
        }
        if (len + 1 + n >= sizeof norm || depth >= (int)(sizeof starts / sizeof starts[0])) return;
        starts[depth++] = len;
        norm[len++] = '/';
        memcpy(norm + len, s, n);
        len += n;
    }
    norm[len] = 0;
    size_t jl = strlen(joined);
    if (jl > 0 && joined[jl - 1] == '/') out->must_be_dir = 1;
    if (last_component && ((last_len == 1 && last_component[0] == '.') ||
                           (last_len == 2 && last_component[0] == '.' && last_component[1] == '.')))
        out->must_be_dir = 1;

    if (strcmp(norm, "/dev/vfio") == 0) {
        out->kind = P_DIR;
        memcpy(out->node, norm, len + 1);
        return;
    }
    /* The module files: "vfio" itself or "vfio_<name>" (vfio_pci, vfio_iommu_type1), and below. */
    if (strncmp(norm, "/sys/module/vfio", 16) == 0 && (norm[16] == 0 || norm[16] == '/' || norm[16] == '_')) {
        out->kind = P_MODULE;
        memcpy(out->node, norm, len + 1);
        return;
    }
    const char *rest = NULL;
    if (strncmp(norm, "/dev/vfio/", 10) == 0) {
        rest = strchr(norm + 10, '/');
    } else if (strcmp(norm, "/dev/iommu") == 0 || strncmp(norm, "/dev/iommu/", 11) == 0) {
        rest = strchr(norm + 5, '/');
    } else {
        return;
    }
    size_t nl = rest ? (size_t)(rest - norm) : len;
    memcpy(out->node, norm, nl);
    out->node[nl] = 0;
    out->kind = rest ? P_BELOW_NODE : P_NODE;
}

int node_lookup(const struct model_path *mp, struct node_info *ni) {
    ni->module = 0;
    int r = LIB_QUIET(lib.path_stat(mp->node, &ni->mode, &ni->major, &ni->minor));
    if (r < 0) return -r;
    if (mp->kind == P_BELOW_NODE) return ENOTDIR;
    if (mp->must_be_dir && !S_ISDIR(ni->mode)) return ENOTDIR;
    return 0;
}
