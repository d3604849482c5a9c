/* Shared by the fuzz targets: each feeds its input to a parser through a file, the way users
 * reach it (the parsers take paths), in a private directory on tmpfs when there is one. */
#ifndef DLCL_FUZZ_H
#define DLCL_FUZZ_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A path for file `name` in this process's scratch directory (created once). */
static inline const char *fuzz_path(const char *name)
{
    static char dir[128];
    static char buf[256];
    if (dir[0] == '\0') {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/dlcl-fuzz-%ld", base, (long)getpid());
        if (mkdir(dir, 0700) != 0 && access(dir, W_OK) != 0) abort();
    }
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

/* Writes data to the scratch file `name`; returns its path. */
static inline const char *fuzz_file(const char *name, const uint8_t *data, size_t size)
{
    const char *p = fuzz_path(name);
    FILE *f = fopen(p, "wb");
    if (f == NULL || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) abort();
    return p;
}

/* Removes the scratch directory and its files. */
static inline void fuzz_cleanup(void)
{
    char dir[256];
    snprintf(dir, sizeof dir, "%s", fuzz_path("x"));
    *strrchr(dir, '/') = '\0';
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(dir);
}

#endif
