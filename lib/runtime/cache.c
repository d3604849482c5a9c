/* On-disk cache of compiled program binaries.
 *
 * One file per (device, driver, platform, source, options), named by a hash of that key:
 *   "DLCLBIN1" | u32 key_len | key bytes | u64 payload_len | u64 payload_hash | payload
 * The full key is stored and compared, so a hash collision or a stale entry is rebuilt;
 * the payload hash catches truncation and bit rot. Writes go to a temporary file that is
 * fsynced and renamed, so a reader never sees half a file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../internal.h"

#define CACHE_MAGIC "DLCLBIN1"
#define CACHE_MAX_BYTES ((size_t)1 << 30) /* no program binary is near this */

uint64_t rt_hash64(const void *data, size_t len, uint64_t seed)
{
    /* FNV-1a, then a splitmix finaliser for better high bits */
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ull ^ seed;
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 1099511628211ull;
    return dlcl__mix64(h);
}

static char *key_string(const rt_cache_key *k)
{
    const char *parts[] = {k->device_name, k->driver_version, k->platform_version, k->options};
    size_t len = 64;
    for (size_t i = 0; i < DLCL__ARRAY_LEN(parts); i++) len += strlen(parts[i] ? parts[i] : "");
    char *s = malloc(len);
    if (s == NULL) return NULL;
    snprintf(s, len, "%s|%s|%s|%016llx|%s", k->device_name ? k->device_name : "",
             k->driver_version ? k->driver_version : "",
             k->platform_version ? k->platform_version : "", (unsigned long long)k->source_hash,
             k->options ? k->options : "");
    return s;
}

dlcl_status rt_cache_path(const char *dir, const rt_cache_key *key, char *out, size_t cap)
{
    char *ks = key_string(key);
    if (ks == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    uint64_t h1 = rt_hash64(ks, strlen(ks), 0), h2 = rt_hash64(ks, strlen(ks), 0x9e3779b97f4a7c15ull);
    free(ks);
    int n = snprintf(out, cap, "%s/%016llx%016llx.bin", dir, (unsigned long long)h1,
                     (unsigned long long)h2);
    if (n < 0 || (size_t)n >= cap) return dlcl__err(DLCL_ERR_INVALID_ARG, "cache path too long: %s", dir);
    return DLCL_OK;
}

static int read_all(FILE *f, void *buf, size_t n) { return fread(buf, 1, n, f) == n; }

dlcl_status rt_cache_load(const char *dir, const rt_cache_key *key, unsigned char **bin, size_t *len)
{
    char path[4096];
    dlcl_status s = rt_cache_path(dir, key, path, sizeof path);
    if (s != DLCL_OK) return s;
    *bin = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) return dlcl__err(DLCL_ERR_NOT_FOUND, "no cache entry %s", path);
    char *ks = key_string(key);
    unsigned char *payload = NULL;
    char magic[8], *stored = NULL;
    uint32_t klen = 0;
    uint64_t plen = 0, phash = 0;
    s = DLCL_ERR_DATA;
    if (ks == NULL) {
        s = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
        goto fail;
    }
    if (!read_all(f, magic, 8) || memcmp(magic, CACHE_MAGIC, 8) != 0 || !read_all(f, &klen, 4) ||
        klen != strlen(ks) || (stored = malloc(klen + 1u)) == NULL || !read_all(f, stored, klen) ||
        memcmp(stored, ks, klen) != 0 || !read_all(f, &plen, 8) || !read_all(f, &phash, 8) ||
        plen == 0 || plen > CACHE_MAX_BYTES) {
        dlcl__err(DLCL_ERR_DATA, "cache entry %s: bad header or key", path);
        goto fail;
    }
    payload = malloc((size_t)plen);
    if (payload == NULL || !read_all(f, payload, (size_t)plen) || fgetc(f) != EOF ||
        rt_hash64(payload, (size_t)plen, 0) != phash) {
        dlcl__err(DLCL_ERR_DATA, "cache entry %s: truncated or corrupt payload", path);
        goto fail;
    }
    fclose(f);
    free(ks);
    free(stored);
    *bin = payload;
    *len = (size_t)plen;
    return DLCL_OK;
fail:
    fclose(f);
    free(ks);
    free(stored);
    free(payload);
    return s;
}

static int mkdir_p(const char *dir)
{
    char tmp[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof tmp) return -1;
    memcpy(tmp, dir, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return (mkdir(tmp, 0755) != 0 && errno != EEXIST) ? -1 : 0;
}

int dlcl__write_all(int fd, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

dlcl_status rt_cache_store(const char *dir, const rt_cache_key *key, const unsigned char *bin, size_t len)
{
    char path[4096], tmp[4200];
    dlcl_status s = rt_cache_path(dir, key, path, sizeof path);
    if (s != DLCL_OK) return s;
    if (mkdir_p(dir) != 0)
        return dlcl__err(DLCL_ERR_IO, "cannot create cache directory %s: %s", dir, strerror(errno));
    char *ks = key_string(key);
    if (ks == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        free(ks);
        return dlcl__err(DLCL_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    }
    uint32_t klen = (uint32_t)strlen(ks);
    uint64_t plen = len, phash = rt_hash64(bin, len, 0);
    int bad = dlcl__write_all(fd, CACHE_MAGIC, 8) || dlcl__write_all(fd, &klen, 4) || dlcl__write_all(fd, ks, klen) ||
              dlcl__write_all(fd, &plen, 8) || dlcl__write_all(fd, &phash, 8) || dlcl__write_all(fd, bin, len) ||
              fsync(fd) != 0;
    bad |= close(fd) != 0;
    free(ks);
    if (bad || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return dlcl__err(DLCL_ERR_IO, "cannot write cache entry %s: %s", path, strerror(e));
    }
    return DLCL_OK;
}

dlcl_status rt_cache_dir_resolve(const char *param_dir, int no_cache, char **out)
{
    *out = NULL;
    const char *nc = getenv("DLCL_NO_CACHE");
    if (no_cache || (nc != NULL && nc[0] != '\0' && strcmp(nc, "0") != 0)) return DLCL_OK;
    const char *env = getenv("DLCL_CACHE_DIR");
    char buf[4096];
    if (env != NULL && env[0] != '\0') {
        snprintf(buf, sizeof buf, "%s", env);
    } else if (param_dir != NULL && param_dir[0] != '\0') {
        snprintf(buf, sizeof buf, "%s", param_dir);
    } else {
        const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
        if (xdg != NULL && xdg[0] == '/')
            snprintf(buf, sizeof buf, "%s/dlcl", xdg);
        else if (home != NULL && home[0] != '\0')
            snprintf(buf, sizeof buf, "%s/.cache/dlcl", home);
        else
            return DLCL_OK; /* nowhere to cache: run without */
    }
    *out = strdup(buf);
    if (*out == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    return DLCL_OK;
}
