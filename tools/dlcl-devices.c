/* dlcl-devices [SELECTOR]: every OpenCL platform and device; '*' marks the one dlcl uses
 * (DLCL_DEVICE if set, else SELECTOR, else the first GPU, else the first device). */
#include <string.h>

#include "common.h"

int main(int argc, char **argv)
{
    if (argc > 2 || (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))) {
        FILE *f = argc > 2 ? stderr : stdout;
        fprintf(f, "usage: dlcl-devices [SELECTOR]\n"
                   "Lists every OpenCL platform and device. '*' marks the one dlcl would use: DLCL_DEVICE if set,\n"
                   "else SELECTOR ('platform:device' indices or a name substring), else the first GPU, else the\n"
                   "first device. Exits 1 if the selector matches no device.\n");
        return argc > 2 ? 2 : 0;
    }
    /* the library's rule: DLCL_DEVICE wins over a selector passed in (as over a config's device=) */
    const char *env = getenv("DLCL_DEVICE"), *arg = argc == 2 ? argv[1] : NULL;
    const char *sel = env && env[0] ? env : arg;
    if (arg && sel == env) fprintf(stderr, "dlcl-devices: note: DLCL_DEVICE='%s' overrides '%s'\n", env, arg);
    dlcl_device_info *list;
    size_t n;
    int chosen;
    dlcl_status s = dlcl_devices_list(arg, &list, &n, &chosen);
    if (s != DLCL_OK) return tool_fail("dlcl-devices", s);
    const char *last_platform = "";
    for (size_t i = 0; i < n; i++) {
        const dlcl_device_info *d = &list[i];
        if (strcmp(d->platform_name, last_platform) != 0) printf("platform %d: %s\n", d->platform_index, d->platform_name);
        last_platform = d->platform_name;
        printf("%c %d:%d  %s\n", (int)i == chosen ? '*' : ' ', d->platform_index, d->device_index, d->name);
        printf("      vendor %s, type %s, %u compute units, driver %s, %s\n", d->vendor, d->type, d->compute_units,
               d->driver_version, d->opencl_c_version);
        printf("      global memory %.1f MiB (largest buffer %.1f MiB), local memory %.1f KiB, max work-group %zu, "
               "fp16 %s, fp64 %s\n",
               d->global_mem_bytes / 1048576.0, d->max_alloc_bytes / 1048576.0, d->local_mem_bytes / 1024.0,
               d->max_work_group_size, d->fp16 ? "yes" : "no", d->fp64 ? "yes" : "no");
    }
    if (chosen < 0) {
        fprintf(stderr, "dlcl-devices: %s: device selector '%s'%s matches no device\n",
                dlcl_status_str(DLCL_ERR_NO_DEVICE), sel ? sel : "(default)",
                sel && sel == env ? " (from DLCL_DEVICE)" : "");
        dlcl_devices_free(list);
        return 1;
    }
    dlcl_devices_free(list);
    return 0;
}
