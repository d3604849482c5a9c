/* Device enumeration and choice: every platform is listed (PoCL is rarely platform 0). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../internal.h"

#define MAX_PLATFORMS 16
#define MAX_DEVICES 64

typedef struct dev_entry {
    cl_platform_id platform;
    cl_device_id device;
    int pi, di;
} dev_entry;

static dlcl_status enumerate(dev_entry *out, size_t cap, size_t *count)
{
    cl_platform_id plats[MAX_PLATFORMS];
    cl_uint np = 0;
    cl_int err = clGetPlatformIDs(MAX_PLATFORMS, plats, &np);
    *count = 0;
    if (err == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || (err == CL_SUCCESS && np == 0))
        return dlcl__err(DLCL_ERR_NO_DEVICE,
                         "no OpenCL platform found (is an ICD such as pocl-opencl-icd "
                         "installed and listed in /etc/OpenCL/vendors?)");
    if (err != CL_SUCCESS) return dlcl__cl_err(err, "clGetPlatformIDs");
    if (np > MAX_PLATFORMS) np = MAX_PLATFORMS;
    for (cl_uint p = 0; p < np; p++) {
        cl_device_id devs[MAX_DEVICES];
        cl_uint nd = 0;
        err = clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, MAX_DEVICES, devs, &nd);
        if (err == CL_DEVICE_NOT_FOUND) continue;
        if (err != CL_SUCCESS) continue; /* a broken ICD must not hide the others */
        if (nd > MAX_DEVICES) nd = MAX_DEVICES;
        for (cl_uint d = 0; d < nd && *count < cap; d++) {
            out[*count] = (dev_entry){plats[p], devs[d], (int)p, (int)d};
            (*count)++;
        }
    }
    if (*count == 0) return dlcl__err(DLCL_ERR_NO_DEVICE, "OpenCL platforms found, but no device");
    return DLCL_OK;
}

static bool contains_nocase(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n) return true;
    }
    return n == 0;
}

static cl_device_type dev_type(cl_device_id d)
{
    cl_device_type t = 0;
    clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof t, &t, NULL);
    return t;
}

/* Index into list chosen by selector; -1 if none matches. */
static int choose(const dev_entry *list, size_t n, const char *sel)
{
    if (sel != NULL && sel[0] != '\0') {
        int p, d, used = 0;
        if (sscanf(sel, "%d:%d%n", &p, &d, &used) == 2 && sel[used] == '\0') {
            for (size_t i = 0; i < n; i++)
                if (list[i].pi == p && list[i].di == d) return (int)i;
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            char name[256] = "";
            clGetDeviceInfo(list[i].device, CL_DEVICE_NAME, sizeof name - 1, name, NULL);
            if (contains_nocase(name, sel)) return (int)i;
        }
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (dev_type(list[i].device) & CL_DEVICE_TYPE_GPU) return (int)i;
    return n > 0 ? 0 : -1;
}

static const char *effective_selector(const char *selector)
{
    const char *env = getenv("DLCL_DEVICE");
    return (env != NULL && env[0] != '\0') ? env : selector;
}

dlcl_status rt_device_choose(const char *selector, cl_platform_id *platform, cl_device_id *device)
{
    dev_entry list[MAX_DEVICES];
    size_t n;
    dlcl_status s = enumerate(list, MAX_DEVICES, &n);
    if (s != DLCL_OK) return s;
    const char *sel = effective_selector(selector);
    int i = choose(list, n, sel);
    if (i < 0) {
        char names[2048] = "";
        size_t len = 0;
        for (size_t j = 0; j < n && len < sizeof names - 200; j++) {
            char name[128] = "";
            clGetDeviceInfo(list[j].device, CL_DEVICE_NAME, sizeof name - 1, name, NULL);
            len += (size_t)snprintf(names + len, sizeof names - len, "%s%d:%d '%s'",
                                    j ? ", " : "", list[j].pi, list[j].di, name);
        }
        return dlcl__err(DLCL_ERR_NO_DEVICE, "device selector '%s'%s matches no device; devices: %s",
                         sel, sel == selector ? "" : " (from DLCL_DEVICE)", names);
    }
    *platform = list[i].platform;
    *device = list[i].device;
    return DLCL_OK;
}

static void str_info(cl_device_id d, cl_device_info what, char *out, size_t cap)
{
    out[0] = '\0';
    if (clGetDeviceInfo(d, what, cap - 1, out, NULL) != CL_SUCCESS) out[0] = '\0';
    out[cap - 1] = '\0';
    /* trim trailing spaces some drivers leave */
    for (size_t l = strlen(out); l > 0 && isspace((unsigned char)out[l - 1]); l--) out[l - 1] = '\0';
}

dlcl_status rt_device_query(cl_platform_id platform, cl_device_id d, int pi, int di,
                            dlcl_device_info *o)
{
    memset(o, 0, sizeof *o);
    o->platform_index = pi;
    o->device_index = di;
    if (clGetPlatformInfo(platform, CL_PLATFORM_NAME, sizeof o->platform_name - 1,
                          o->platform_name, NULL) != CL_SUCCESS)
        o->platform_name[0] = '\0';
    str_info(d, CL_DEVICE_NAME, o->name, sizeof o->name);
    str_info(d, CL_DEVICE_VENDOR, o->vendor, sizeof o->vendor);
    str_info(d, CL_DRIVER_VERSION, o->driver_version, sizeof o->driver_version);
    str_info(d, CL_DEVICE_OPENCL_C_VERSION, o->opencl_c_version, sizeof o->opencl_c_version);
    cl_device_type t = dev_type(d);
    snprintf(o->type, sizeof o->type, "%s",
             (t & CL_DEVICE_TYPE_GPU) ? "GPU" : (t & CL_DEVICE_TYPE_CPU) ? "CPU"
             : (t & CL_DEVICE_TYPE_ACCELERATOR) ? "ACCELERATOR" : "OTHER");
    cl_uint cu = 0;
    cl_ulong gmem = 0, lmem = 0, maxalloc = 0;
    size_t wg = 0;
    cl_int err = clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
    err |= clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof gmem, &gmem, NULL);
    err |= clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof lmem, &lmem, NULL);
    err |= clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof maxalloc, &maxalloc, NULL);
    err |= clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL);
    if (err != CL_SUCCESS) return dlcl__cl_err(err, "clGetDeviceInfo");
    o->compute_units = cu;
    o->global_mem_bytes = gmem;
    o->local_mem_bytes = lmem;
    o->max_alloc_bytes = maxalloc;
    o->max_work_group_size = wg;
    size_t ext_len = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, 0, NULL, &ext_len) == CL_SUCCESS && ext_len > 0) {
        char *ext = malloc(ext_len + 1);
        if (ext == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
        if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, ext_len, ext, NULL) == CL_SUCCESS) {
            ext[ext_len] = '\0';
            o->fp16 = strstr(ext, "cl_khr_fp16") != NULL;
            o->fp64 = strstr(ext, "cl_khr_fp64") != NULL;
        }
        free(ext);
    }
    return DLCL_OK;
}

dlcl_status dlcl_devices_list(const char *selector, dlcl_device_info **out, size_t *count,
                              int *chosen)
{
    if (out == NULL || count == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_devices_list: out and count must not be NULL");
    *out = NULL;
    *count = 0;
    if (chosen) *chosen = -1;
    dev_entry list[MAX_DEVICES];
    size_t n;
    dlcl_status s = enumerate(list, MAX_DEVICES, &n);
    if (s != DLCL_OK) return s;
    dlcl_device_info *infos = calloc(n, sizeof *infos);
    if (infos == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    for (size_t i = 0; i < n; i++) {
        s = rt_device_query(list[i].platform, list[i].device, list[i].pi, list[i].di, &infos[i]);
        if (s != DLCL_OK) {
            free(infos);
            return s;
        }
    }
    if (chosen) *chosen = choose(list, n, effective_selector(selector));
    *out = infos;
    *count = n;
    return DLCL_OK;
}

void dlcl_devices_free(dlcl_device_info *list) { free(list); }
