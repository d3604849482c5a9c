/* Status names, the thread-local last-error message, OpenCL error names. */
#include <stdio.h>
#include <string.h>

#include "../internal.h"

#define ERR_CAP 16384 /* room for a compiler log excerpt */

static _Thread_local char err_msg[ERR_CAP];

static const char *const status_names[] = {
    [DLCL_OK] = "DLCL_OK",
    [DLCL_ERR_INVALID_ARG] = "DLCL_ERR_INVALID_ARG",
    [DLCL_ERR_NO_DEVICE] = "DLCL_ERR_NO_DEVICE",
    [DLCL_ERR_OPENCL] = "DLCL_ERR_OPENCL",
    [DLCL_ERR_BUILD] = "DLCL_ERR_BUILD",
    [DLCL_ERR_NOT_FOUND] = "DLCL_ERR_NOT_FOUND",
    [DLCL_ERR_IO] = "DLCL_ERR_IO",
    [DLCL_ERR_OUT_OF_MEMORY] = "DLCL_ERR_OUT_OF_MEMORY",
    [DLCL_ERR_BLAS] = "DLCL_ERR_BLAS",
    [DLCL_ERR_CONFIG] = "DLCL_ERR_CONFIG",
    [DLCL_ERR_DATA] = "DLCL_ERR_DATA",
    [DLCL_ERR_SHAPE] = "DLCL_ERR_SHAPE",
    [DLCL_ERR_CHECKPOINT] = "DLCL_ERR_CHECKPOINT",
    [DLCL_ERR_NUMERIC] = "DLCL_ERR_NUMERIC",
    [DLCL_ERR_INTERRUPTED] = "DLCL_ERR_INTERRUPTED",
};
_Static_assert(DLCL__ARRAY_LEN(status_names) == DLCL_STATUS_COUNT,
               "status_names must name every dlcl_status");

const char *dlcl_status_str(dlcl_status s)
{
    if ((int)s < 0 || s >= DLCL_STATUS_COUNT) return "unknown status";
    return status_names[s];
}

const char *dlcl_last_error(void) { return err_msg; }

void dlcl__clear_error(void) { err_msg[0] = '\0'; }

dlcl_status dlcl__err(dlcl_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    va_end(ap);
    return status;
}

dlcl_status dlcl__err_prefix(dlcl_status status, const char *fmt, ...)
{
    char prefix[1024], old[ERR_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err_msg, sizeof old);
    size_t pl = strlen(prefix);
    if (pl + 2 >= sizeof err_msg) pl = sizeof err_msg - 3;
    memcpy(err_msg, prefix, pl);
    memcpy(err_msg + pl, ": ", 2);
    size_t rest = sizeof err_msg - pl - 3, ol = strlen(old);
    if (ol > rest) ol = rest;
    memcpy(err_msg + pl + 2, old, ol);
    err_msg[pl + 2 + ol] = '\0';
    return status;
}

const char *dlcl__cl_error_name(cl_int err)
{
    switch (err) {
#define E(x) case x: return #x;
    E(CL_SUCCESS) E(CL_DEVICE_NOT_FOUND) E(CL_DEVICE_NOT_AVAILABLE)
    E(CL_COMPILER_NOT_AVAILABLE) E(CL_MEM_OBJECT_ALLOCATION_FAILURE)
    E(CL_OUT_OF_RESOURCES) E(CL_OUT_OF_HOST_MEMORY) E(CL_PROFILING_INFO_NOT_AVAILABLE)
    E(CL_MEM_COPY_OVERLAP) E(CL_IMAGE_FORMAT_MISMATCH) E(CL_IMAGE_FORMAT_NOT_SUPPORTED)
    E(CL_BUILD_PROGRAM_FAILURE) E(CL_MAP_FAILURE) E(CL_MISALIGNED_SUB_BUFFER_OFFSET)
    E(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST) E(CL_COMPILE_PROGRAM_FAILURE)
    E(CL_LINKER_NOT_AVAILABLE) E(CL_LINK_PROGRAM_FAILURE) E(CL_DEVICE_PARTITION_FAILED)
    E(CL_KERNEL_ARG_INFO_NOT_AVAILABLE) E(CL_INVALID_VALUE) E(CL_INVALID_DEVICE_TYPE)
    E(CL_INVALID_PLATFORM) E(CL_INVALID_DEVICE) E(CL_INVALID_CONTEXT)
    E(CL_INVALID_QUEUE_PROPERTIES) E(CL_INVALID_COMMAND_QUEUE) E(CL_INVALID_HOST_PTR)
    E(CL_INVALID_MEM_OBJECT) E(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR) E(CL_INVALID_IMAGE_SIZE)
    E(CL_INVALID_SAMPLER) E(CL_INVALID_BINARY) E(CL_INVALID_BUILD_OPTIONS)
    E(CL_INVALID_PROGRAM) E(CL_INVALID_PROGRAM_EXECUTABLE) E(CL_INVALID_KERNEL_NAME)
    E(CL_INVALID_KERNEL_DEFINITION) E(CL_INVALID_KERNEL) E(CL_INVALID_ARG_INDEX)
    E(CL_INVALID_ARG_VALUE) E(CL_INVALID_ARG_SIZE) E(CL_INVALID_KERNEL_ARGS)
    E(CL_INVALID_WORK_DIMENSION) E(CL_INVALID_WORK_GROUP_SIZE) E(CL_INVALID_WORK_ITEM_SIZE)
    E(CL_INVALID_GLOBAL_OFFSET) E(CL_INVALID_EVENT_WAIT_LIST) E(CL_INVALID_EVENT)
    E(CL_INVALID_OPERATION) E(CL_INVALID_GL_OBJECT) E(CL_INVALID_BUFFER_SIZE)
    E(CL_INVALID_MIP_LEVEL) E(CL_INVALID_GLOBAL_WORK_SIZE) E(CL_INVALID_PROPERTY)
    E(CL_INVALID_IMAGE_DESCRIPTOR) E(CL_INVALID_COMPILER_OPTIONS) E(CL_INVALID_LINKER_OPTIONS)
    E(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef E
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    default: return "unknown OpenCL error";
    }
}

dlcl_status dlcl__cl_err(cl_int err, const char *what)
{
    dlcl_status s = DLCL_ERR_OPENCL;
    if (err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_HOST_MEMORY ||
        err == CL_INVALID_BUFFER_SIZE)
        s = DLCL_ERR_OUT_OF_MEMORY;
    return dlcl__err(s, "%s failed: %s (%d)", what, dlcl__cl_error_name(err), (int)err);
}
