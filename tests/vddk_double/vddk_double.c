/* A stand-in for libvixDiskLib with the VDDK 7.x/8.x ABI, for tests only.
 *
 * It serves "[datastore] dir/disk.vmdk" from vcsim's datastore folders: the
 * descriptor names a flat extent, reads and writes go to that file, and the
 * holes of the file are the unallocated blocks.  It checks connection
 * parameters the way vCenter would refuse them, chooses a transport mode
 * from the caller's list, injects faults, and appends one JSON line per call
 * to a log file.  Configuration: key=value lines in the file named by
 * VMCRYPT_VDDK_DOUBLE_CONFIG, re-read at every InitEx, PrepareForAccess and
 * ConnectEx (so a test can change it between connections):
 *
 *   datastore.NAME=/local/folder     one per datastore
 *   thumbprint=AA:BB:...             vCenter's SHA-1 thumbprint (required)
 *   snapshot=snapshot-N              known snapshot morefs (repeatable; "*": any)
 *   vm=vm-N                          known VMs (repeatable; none = any)
 *   encrypted=[DS] dir/disk.vmdk     encrypted disks (repeatable)
 *   powered_on=vm-N                  VMs running now: their disks cannot be opened for
 *                                    writing (repeatable)
 *   hotadd=0|1                       this "proxy" can hot-add disks
 *   proxy_encrypted=0|1              the proxy VM is encrypted
 *   log=/path/calls.jsonl            call log (appended)
 *   fault.read_error_offset=BYTES    a Read covering this byte fails
 *   fault.drop_after_reads=N         after N reads the connection is lost
 *   fault.read_delay_ms=MS           every Read sleeps this long
 *   fault.write_delay_ms=MS          every Write sleeps this long (a slow target datastore)
 *   fault.write_error_offset=BYTES   a Write covering this byte fails (VIX_E_DISK_NOIO)
 *   latency_ms=MS                    the time each NBD/NBDSSL request spends on the network: a
 *                                    Write's data reaches the file MS after the call was made,
 *                                    a Read's MS after the file was read; requests in flight
 *                                    (WriteAsync) overlap theirs
 *   fault.drop_after_writes=N        after N writes the connection is lost
 *   fault.query_blocks=unsupported   QueryAllocatedBlocks fails with code 6 (storage
 *                                    other than VMFS/vSAN); =whole: one extent
 *                                    covering the whole range asked
 *   fault.access_busy=N              the next N PrepareForAccess calls fail: another
 *                                    backup (or a crashed one) disabled RelocateVM_Task
 *   fallback_mode=nbdssl|nbd         the mode Open falls back to when no requested
 *                                    mode is usable (VDDK's is nbdssl)
 *   max_request=BYTES                larger NBD/NBDSSL Read/Write requests fail as NFC
 *                                    fails to allocate them (default 2 MiB, 0: none)
 *   write_cache=direct|buffered      how Write reaches the flat file (default direct):
 *                                    direct writes with O_DIRECT, as ESXi's VMFS serves
 *                                    virtual disk I/O without a host page cache (vSphere
 *                                    sold Flash Read Cache separately for that reason);
 *                                    buffered goes through this machine's page cache.
 *                                    A file system that refuses O_DIRECT (tmpfs) gets
 *                                    buffered writes.
 *
 * Behaviour taught from the real library (docs/vddk.md has the table):
 * InitEx loads libvixDiskLibVim.so.8 by bare name, so LD_LIBRARY_PATH must hold
 * lib64 from process start; InitEx once per process and never after Exit; log
 * lines reach the log, warning and panic callbacks from a background thread;
 * sessionId credentials need cookie, userName and key; a wrong thumbprint is
 * found by Open (VIX_E_FAIL), not ConnectEx; Open falls back to another mode
 * instead of failing; FreeConnectParams frees only the structure; a disk in
 * active use (its VM powered on) cannot be opened for writing ("You cannot get
 * write access to a virtual disk that is in active use", VDDK 8 programming
 * guide, "Low Level Restore Procedures"); a restore over NBDSSL or HotAdd needs
 * no restore snapshot (same section: "the restore snapshot is optional");
 * WriteAsync returns VIX_ASYNC once the request is queued, and its callback
 * runs later on a library thread, not the caller's (nbdkit's VDDK plugin
 * signals a condition variable from it for that reason); Wait returns when
 * every queued request of the handle has completed.  Requests run in order on
 * one I/O thread per handle ("the host"), and callbacks run on another (the
 * client's poll thread), so a slow callback delays the next notification, not
 * the next write.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "vddk_abi.h"

#define EXPORT __attribute__((visibility("default")))
#define MAX_ITEMS 64
#define CONN_MAGIC 0x636f6e6eu
#define DISK_MAGIC 0x6469736bu
#define COMPANION "libvixDiskLibVim.so.8"
#define DEFAULT_MAX_REQUEST (2LL * 1024 * 1024)

struct config {
    char *ds_name[MAX_ITEMS];
    char *ds_dir[MAX_ITEMS];
    int n_ds;
    char *snapshots[MAX_ITEMS];
    int n_snapshots;
    char *vms[MAX_ITEMS];
    int n_vms;
    char *encrypted[MAX_ITEMS];
    int n_encrypted;
    char *powered_on[MAX_ITEMS];
    int n_powered_on;
    char *thumbprint;
    char *log_path;
    int hotadd;
    int proxy_encrypted;
    long long read_error_offset;
    long drop_after_reads;
    long read_delay_ms;
    long write_delay_ms;
    long long write_error_offset;
    long drop_after_writes;
    long latency_ms;
    char query_blocks[32];
    long access_busy;
    char fallback_mode[16];
    long long max_request;
    int write_buffered;
};

struct connection {
    unsigned magic;
    char *vmx;
    char *snapshot;
    char *transports;
    int read_only;
    long reads;
    long writes;
    int lost;
    int thumbprint_ok;
};

struct disk {
    unsigned magic;
    struct connection *conn;
    int fd;
    int direct_fd;          /* O_DIRECT descriptor for Write, or -1: buffered writes */
    unsigned char *bounce;  /* aligned copy of a Write's buffer for direct_fd */
    size_t bounce_size;
    uint64_t capacity;
    int read_only;
    const char *mode;
    char *path;
    struct async_queue *aio;  /* WriteAsync's threads and queues, made at the first WriteAsync */
};

struct async_request {
    struct async_request *next;
    struct timespec made;  /* when WriteAsync queued it: its round trip counts from here */
    uint64_t start, count;
    const unsigned char *buffer;
    VixDiskLibCompletionCB callback;
    void *data;
    VixError result;
};

/* Queued requests go to the I/O thread, done ones to the callback thread; pending counts
 * both, until the callback has returned. */
struct async_queue {
    pthread_mutex_t mutex;
    pthread_cond_t changed;
    struct async_request *queued, *queued_tail, *done, *done_tail;
    long pending;
    int stopping;
    pthread_t io_thread, callback_thread;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct config cfg;
static int initialized;
static int exited;
static void *companion;
/* PrepareForAccess refusals done for the current fault.access_busy value. */
static long access_busy_seen = -1, access_refused;
/* VMs whose RelocateVM_Task is disabled: PrepareForAccess without EndAccess yet. */
static char *prepared_vms[MAX_ITEMS];
static int n_prepared;

/* ---- configuration ------------------------------------------------- */

static void config_clear(void)
{
    int i;
    for (i = 0; i < cfg.n_ds; i++) {
        free(cfg.ds_name[i]);
        free(cfg.ds_dir[i]);
    }
    for (i = 0; i < cfg.n_snapshots; i++)
        free(cfg.snapshots[i]);
    for (i = 0; i < cfg.n_vms; i++)
        free(cfg.vms[i]);
    for (i = 0; i < cfg.n_encrypted; i++)
        free(cfg.encrypted[i]);
    for (i = 0; i < cfg.n_powered_on; i++)
        free(cfg.powered_on[i]);
    free(cfg.thumbprint);
    free(cfg.log_path);
    memset(&cfg, 0, sizeof cfg);
    cfg.read_error_offset = -1;
    cfg.write_error_offset = -1;
    cfg.max_request = DEFAULT_MAX_REQUEST;
    strcpy(cfg.fallback_mode, "nbdssl");
}

static char *trim(char *text)
{
    char *end;
    while (isspace((unsigned char)*text))
        text++;
    end = text + strlen(text);
    while (end > text && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return text;
}

static void add_item(char **list, int *count, const char *value)
{
    if (*count < MAX_ITEMS)
        list[(*count)++] = strdup(value);
}

static void config_load(void)
{
    const char *path = getenv("VMCRYPT_VDDK_DOUBLE_CONFIG");
    char line[4096];
    FILE *file;

    config_clear();
    if (path == NULL || (file = fopen(path, "r")) == NULL)
        return;
    while (fgets(line, sizeof line, file) != NULL) {
        char *key = trim(line), *value, *equals;
        if (*key == '\0' || *key == '#' || (equals = strchr(key, '=')) == NULL)
            continue;
        *equals = '\0';
        value = trim(equals + 1);
        key = trim(key);
        if (strncmp(key, "datastore.", 10) == 0 && cfg.n_ds < MAX_ITEMS) {
            cfg.ds_name[cfg.n_ds] = strdup(key + 10);
            cfg.ds_dir[cfg.n_ds++] = strdup(value);
        } else if (strcmp(key, "snapshot") == 0) {
            add_item(cfg.snapshots, &cfg.n_snapshots, value);
        } else if (strcmp(key, "vm") == 0) {
            add_item(cfg.vms, &cfg.n_vms, value);
        } else if (strcmp(key, "encrypted") == 0) {
            add_item(cfg.encrypted, &cfg.n_encrypted, value);
        } else if (strcmp(key, "powered_on") == 0) {
            add_item(cfg.powered_on, &cfg.n_powered_on, value);
        } else if (strcmp(key, "thumbprint") == 0) {
            free(cfg.thumbprint);
            cfg.thumbprint = strdup(value);
        } else if (strcmp(key, "log") == 0) {
            free(cfg.log_path);
            cfg.log_path = strdup(value);
        } else if (strcmp(key, "hotadd") == 0) {
            cfg.hotadd = atoi(value);
        } else if (strcmp(key, "proxy_encrypted") == 0) {
            cfg.proxy_encrypted = atoi(value);
        } else if (strcmp(key, "fault.read_error_offset") == 0) {
            cfg.read_error_offset = atoll(value);
        } else if (strcmp(key, "fault.drop_after_reads") == 0) {
            cfg.drop_after_reads = atol(value);
        } else if (strcmp(key, "fault.read_delay_ms") == 0) {
            cfg.read_delay_ms = atol(value);
        } else if (strcmp(key, "fault.write_delay_ms") == 0) {
            cfg.write_delay_ms = atol(value);
        } else if (strcmp(key, "fault.write_error_offset") == 0) {
            cfg.write_error_offset = atoll(value);
        } else if (strcmp(key, "fault.drop_after_writes") == 0) {
            cfg.drop_after_writes = atol(value);
        } else if (strcmp(key, "latency_ms") == 0) {
            cfg.latency_ms = atol(value);
        } else if (strcmp(key, "fault.query_blocks") == 0) {
            snprintf(cfg.query_blocks, sizeof cfg.query_blocks, "%s", value);
        } else if (strcmp(key, "fault.access_busy") == 0) {
            cfg.access_busy = atol(value);
        } else if (strcmp(key, "fallback_mode") == 0) {
            snprintf(cfg.fallback_mode, sizeof cfg.fallback_mode, "%s", value);
        } else if (strcmp(key, "max_request") == 0) {
            cfg.max_request = atoll(value);
        } else if (strcmp(key, "write_cache") == 0) {
            cfg.write_buffered = strcmp(value, "buffered") == 0;
        }
    }
    fclose(file);
    if (cfg.access_busy != access_busy_seen) {
        access_busy_seen = cfg.access_busy;
        access_refused = 0;
    }
}

static int in_list(char **list, int count, const char *value)
{
    int i;
    for (i = 0; value != NULL && i < count; i++)
        if (strcmp(list[i], value) == 0)
            return 1;
    return 0;
}

/* ---- call log -------------------------------------------------------- */

struct record {
    char text[8192];
    size_t used;
};

static void rec_raw(struct record *r, const char *text)
{
    size_t length = strlen(text);
    if (r->used + length + 1 < sizeof r->text) {
        memcpy(r->text + r->used, text, length + 1);
        r->used += length;
    }
}

static void rec_string(struct record *r, const char *key, const char *value)
{
    char piece[1100];
    size_t i, n = 0;
    snprintf(piece, sizeof piece, ",\"%s\":", key);
    rec_raw(r, piece);
    if (value == NULL) {
        rec_raw(r, "null");
        return;
    }
    piece[n++] = '"';
    for (i = 0; value[i] != '\0' && n < sizeof piece - 8; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c == '"' || c == '\\') {
            piece[n++] = '\\';
            piece[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(piece + n, 7, "\\u%04x", c);
        } else {
            piece[n++] = (char)c;
        }
    }
    piece[n++] = '"';
    piece[n] = '\0';
    rec_raw(r, piece);
}

static void rec_number(struct record *r, const char *key, unsigned long long value)
{
    char piece[128];
    snprintf(piece, sizeof piece, ",\"%s\":%llu", key, value);
    rec_raw(r, piece);
}

static void rec_begin(struct record *r, const char *call)
{
    r->used = 0;
    r->text[0] = '\0';
    rec_raw(r, "{\"call\":\"");
    rec_raw(r, call);
    rec_raw(r, "\"");
}

static void rec_end(struct record *r, VixError result)
{
    int fd;
    rec_number(r, "result", result);
    rec_raw(r, "}\n");
    if (cfg.log_path == NULL)
        return;
    fd = open(cfg.log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
        if (write(fd, r->text, r->used) < 0)
            perror("vddk double: call log");
        close(fd);
    }
}

/* ---- VDDK's log: three callbacks, called from a background thread --- */

enum level { LEVEL_LOG, LEVEL_WARN, LEVEL_PANIC };

static struct {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    pthread_t thread;
    int running, stop;
    int pending;            /* a line waits in text */
    enum level level;
    char text[4096];
    VixDiskLibGenericLogFunc *fn[3];
} logger = { .mutex = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void deliver(VixDiskLibGenericLogFunc *fn, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    fn(fmt, args);
    va_end(args);
}

static void *logger_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&logger.mutex);
    for (;;) {
        while (!logger.pending && !logger.stop)
            pthread_cond_wait(&logger.cond, &logger.mutex);
        if (logger.pending) {
            VixDiskLibGenericLogFunc *fn = logger.fn[logger.level];
            if (fn != NULL)
                deliver(fn, "%s", logger.text);
            logger.pending = 0;
            pthread_cond_broadcast(&logger.cond);
            continue;
        }
        break;
    }
    pthread_mutex_unlock(&logger.mutex);
    return NULL;
}

/* Hand one line to the logger thread and wait until it was delivered, so a
 * caller sees its lines in order; never called while the logger is stopped. */
static void emit_at(enum level level, const char *fmt, va_list args)
{
    pthread_mutex_lock(&logger.mutex);
    if (!logger.running) {
        pthread_mutex_unlock(&logger.mutex);
        return;
    }
    while (logger.pending)
        pthread_cond_wait(&logger.cond, &logger.mutex);
    vsnprintf(logger.text, sizeof logger.text, fmt, args);
    logger.level = level;
    logger.pending = 1;
    pthread_cond_broadcast(&logger.cond);
    while (logger.pending)
        pthread_cond_wait(&logger.cond, &logger.mutex);
    pthread_mutex_unlock(&logger.mutex);
}

static void emit(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    emit_at(LEVEL_LOG, fmt, args);
    va_end(args);
}

static void warn(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    emit_at(LEVEL_WARN, fmt, args);
    va_end(args);
}

static void panic(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    emit_at(LEVEL_PANIC, fmt, args);
    va_end(args);
}

static int logger_start(VixDiskLibGenericLogFunc *log_function, VixDiskLibGenericLogFunc *warn_function,
                        VixDiskLibGenericLogFunc *panic_function)
{
    pthread_mutex_lock(&logger.mutex);
    logger.fn[LEVEL_LOG] = log_function;
    logger.fn[LEVEL_WARN] = warn_function;
    logger.fn[LEVEL_PANIC] = panic_function;
    logger.stop = 0;
    logger.pending = 0;
    logger.running = pthread_create(&logger.thread, NULL, logger_main, NULL) == 0;
    pthread_mutex_unlock(&logger.mutex);
    return logger.running;
}

static void logger_stop(void)
{
    pthread_mutex_lock(&logger.mutex);
    if (!logger.running) {
        pthread_mutex_unlock(&logger.mutex);
        return;
    }
    while (logger.pending)
        pthread_cond_wait(&logger.cond, &logger.mutex);
    logger.stop = 1;
    logger.running = 0;
    pthread_cond_broadcast(&logger.cond);
    pthread_mutex_unlock(&logger.mutex);
    pthread_join(logger.thread, NULL);
}

/* The connection parameters as the log records them: never a secret. */
static void rec_params(struct record *r, const VixDiskLibConnectParams *params)
{
    if (params == NULL) {
        rec_raw(r, ",\"params\":null");
        return;
    }
    rec_string(r, "vmxSpec", params->vmxSpec);
    rec_string(r, "serverName", params->serverName);
    rec_string(r, "thumbPrint", params->thumbPrint);
    rec_number(r, "port", params->port);
    rec_number(r, "nfcHostPort", params->nfcHostPort);
    if (params->credType == VIXDISKLIB_CRED_SESSIONID) {
        rec_string(r, "credType", "sessionid");
        rec_number(r, "cookieGiven", params->creds.sessionId.cookie != NULL
                   && params->creds.sessionId.cookie[0] != '\0');
        rec_string(r, "userName", params->creds.sessionId.userName);
        rec_number(r, "keyGiven", params->creds.sessionId.key != NULL);
    } else if (params->credType == VIXDISKLIB_CRED_UID) {
        rec_string(r, "credType", "uid");
        rec_string(r, "userName", params->creds.uid.userName);
        rec_number(r, "passwordGiven", params->creds.uid.password != NULL);
    } else {
        rec_number(r, "credTypeValue", (unsigned long long)params->credType);
    }
}

/* ---- errors ---------------------------------------------------------- */

static const char *error_text(VixError error)
{
    switch (error & 0xFFFF) {
    case VIX_OK: return "The operation was successful";
    case VIX_E_FAIL: return "Unknown error";
    case VIX_E_OUT_OF_MEMORY: return "Memory allocation failed: out of memory";
    case VIX_E_INVALID_ARG: return "One of the parameters was invalid";
    case VIX_E_FILE_NOT_FOUND: return "The system cannot find the file specified";
    case VIX_E_OBJECT_IS_BUSY: return "The object is busy";
    case VIX_E_NOT_SUPPORTED: return "The operation is not supported";
    case VIX_E_FILE_ERROR: return "A file access error occurred on the host or guest operating system";
    case VIX_E_FILE_READ_ONLY: return "The file is write-protected";
    case VIX_E_FILE_ALREADY_LOCKED: return "The file is already in use";
    case VIX_E_FILE_NAME_INVALID: return "The file name is not valid";
    case VIX_E_AUTHENTICATION_FAIL: return "Authentication failure or insufficient permissions in guest operating system";
    case VIX_E_VM_NOT_FOUND: return "The virtual machine cannot be found";
    case VIX_E_SNAPSHOT_NOTFOUND: return "The snapshot could not be found";
    case VIX_E_HOST_TCP_CONN_LOST: return "Connection lost with the server";
    case VIX_E_DISK_NOINIT: return "The disk library has not been initialized";
    case VIX_E_DISK_NOIO: return "The disk is not accessible or an I/O error occurred";
    case VIX_E_DISK_OUTOFRANGE: return "The range is out of the disk boundaries";
    case VIX_E_CANNOT_CONNECT_TO_HOST: return "Cannot connect to the host";
    default: return "Unknown error";
    }
}

EXPORT char *VixDiskLib_GetErrorText(VixError error, const char *locale)
{
    (void)locale;
    return strdup(error_text(error));
}

EXPORT void VixDiskLib_FreeErrorText(char *text)
{
    free(text);
}

/* ---- library --------------------------------------------------------- */

static int on_main_thread(void)
{
    return (pid_t)syscall(SYS_gettid) == getpid();
}

/* InitEx: once per process, never again after Exit (VDDK keeps process-wide
 * state it does not rebuild).  Like VDDK it loads a library of its own by bare
 * name, which the dynamic loader finds only through LD_LIBRARY_PATH as it was
 * when the process started: loading libvixDiskLib.so.8 by full path is not
 * enough. */
EXPORT VixError VixDiskLib_InitEx(uint32_t major, uint32_t minor,
                                  VixDiskLibGenericLogFunc *log_function,
                                  VixDiskLibGenericLogFunc *warn_function,
                                  VixDiskLibGenericLogFunc *panic_function,
                                  const char *lib_dir, const char *config_file)
{
    struct record r;
    VixError result = VIX_OK;
    const char *refusal = NULL;
    char load_error[512] = "";
    int started = 0;

    pthread_mutex_lock(&lock);
    config_load();
    if (exited) {
        result = VIX_E_FAIL;
        refusal = "VixDiskLib_InitEx called after VixDiskLib_Exit: the library cannot be initialised again in this process";
    } else if (initialized) {
        result = VIX_E_FAIL;
        refusal = "VixDiskLib_InitEx called twice: initialise once per process";
    } else {
        started = logger_start(log_function, warn_function, panic_function);
        if (companion == NULL)
            companion = dlopen(COMPANION, RTLD_NOW | RTLD_LOCAL);
        if (companion == NULL) {
            const char *why = dlerror();
            snprintf(load_error, sizeof load_error, "%s", why ? why : "not found");
            result = VIX_E_FAIL;
        } else {
            initialized = 1;
        }
    }
    rec_begin(&r, "InitEx");
    rec_number(&r, "major", major);
    rec_number(&r, "minor", minor);
    rec_string(&r, "libDir", lib_dir);
    rec_string(&r, "configFile", config_file);
    rec_number(&r, "logFunction", log_function != NULL);
    rec_number(&r, "warnFunction", warn_function != NULL);
    rec_number(&r, "panicFunction", panic_function != NULL);
    rec_number(&r, "mainThread", on_main_thread());
    rec_string(&r, "refused", refusal);
    rec_string(&r, "loadError", load_error[0] ? load_error : NULL);
    rec_end(&r, result);
    pthread_mutex_unlock(&lock);
    if (refusal != NULL) {
        /* the logger of the first InitEx, if it still runs, says why */
        panic("VixDiskLib: %s\n", refusal);
        return result;
    }
    if (load_error[0]) {
        warn("VixDiskLib: Failed to load %s: %s\n", COMPANION, load_error);
        panic("VixDiskLib: cannot initialise without %s; is %s/lib64 on LD_LIBRARY_PATH?\n", COMPANION,
              lib_dir ? lib_dir : "<libdir>");
        if (started)
            logger_stop();
        return result;
    }
    emit("VixDiskLib: initialized (test double), API version %u.%u\n", major, minor);
    return VIX_OK;
}

EXPORT void VixDiskLib_Exit(void)
{
    struct record r;
    emit("VixDiskLib: exiting\n");
    logger_stop();
    pthread_mutex_lock(&lock);
    rec_begin(&r, "Exit");
    rec_number(&r, "mainThread", on_main_thread());
    rec_number(&r, "wasInitialized", initialized);
    rec_end(&r, VIX_OK);
    if (initialized)
        exited = 1;
    initialized = 0;
    pthread_mutex_unlock(&lock);
}

EXPORT const char *VixDiskLib_ListTransportModes(void)
{
    return "file:san:hotadd:nbdssl:nbd";
}

EXPORT VixDiskLibConnectParams *VixDiskLib_AllocateConnectParams(void)
{
    return calloc(1, sizeof(VixDiskLibConnectParams));
}

/* Frees the structure AllocateConnectParams made, and only that: callers fill
 * it with strings they own (VMware's sample program and nbdkit both do). */
EXPORT void VixDiskLib_FreeConnectParams(VixDiskLibConnectParams *params)
{
    free(params);
}

/* What VDDK needs of sessionId credentials: every known working caller fills
 * cookie, userName and key, and VDDK crashes on NULLs it expects. */
static VixError check_credentials(const VixDiskLibConnectParams *params)
{
    if (params->credType == VIXDISKLIB_CRED_SESSIONID) {
        if (params->creds.sessionId.cookie == NULL || params->creds.sessionId.cookie[0] == '\0')
            return VIX_E_AUTHENTICATION_FAIL;
        if (params->creds.sessionId.userName == NULL || params->creds.sessionId.key == NULL)
            return VIX_E_INVALID_ARG;
    } else if (params->credType == VIXDISKLIB_CRED_UID) {
        if (params->creds.uid.userName == NULL || params->creds.uid.password == NULL)
            return VIX_E_AUTHENTICATION_FAIL;
    } else {
        return VIX_E_AUTHENTICATION_FAIL;
    }
    return VIX_OK;
}

static int prepared_index(const char *vm)
{
    int i;
    for (i = 0; vm != NULL && i < n_prepared; i++)
        if (strcmp(prepared_vms[i], vm) == 0)
            return i;
    return -1;
}

/* PrepareForAccess disables RelocateVM_Task of the VM in vCenter until
 * EndAccess; EndAccess also cleans up after a crashed backup (no Prepare). */
static VixError access_call(const char *call, const VixDiskLibConnectParams *params, const char *identity)
{
    struct record r;
    VixError result = VIX_OK;
    int prepare = strcmp(call, "PrepareForAccess") == 0, busy = 0, index;
    const char *vm = NULL;
    pthread_mutex_lock(&lock);
    if (prepare)
        config_load();
    if (!initialized)
        result = VIX_E_DISK_NOINIT;
    else if (params == NULL || params->vmxSpec == NULL || identity == NULL
             || strncmp(params->vmxSpec, "moref=", 6) != 0)
        result = VIX_E_INVALID_ARG;
    else if ((result = check_credentials(params)) == VIX_OK) {
        vm = params->vmxSpec + 6;
        index = prepared_index(vm);
        if (prepare && access_refused < cfg.access_busy) {
            access_refused++;
            busy = 1;
            result = VIX_E_OBJECT_IS_BUSY;
        } else if (prepare && index < 0 && n_prepared < MAX_ITEMS) {
            prepared_vms[n_prepared++] = strdup(vm);
        } else if (!prepare && index >= 0) {
            free(prepared_vms[index]);
            prepared_vms[index] = prepared_vms[--n_prepared];
        }
    }
    rec_begin(&r, call);
    rec_params(&r, params);
    rec_string(&r, "identity", identity);
    rec_end(&r, result);
    pthread_mutex_unlock(&lock);
    if (busy)
        warn("VixDiskLibVim: %s: vim.fault.MethodAlreadyDisabledFault: RelocateVM_Task of %s is already "
             "disabled by another backup\n", call, vm);
    return result;
}

EXPORT VixError VixDiskLib_PrepareForAccess(const VixDiskLibConnectParams *params, const char *identity)
{
    return access_call("PrepareForAccess", params, identity);
}

EXPORT VixError VixDiskLib_EndAccess(const VixDiskLibConnectParams *params, const char *identity)
{
    return access_call("EndAccess", params, identity);
}

EXPORT VixError VixDiskLib_Cleanup(const VixDiskLibConnectParams *params,
                                   uint32_t *cleaned_up, uint32_t *remaining)
{
    struct record r;
    if (cleaned_up != NULL)
        *cleaned_up = 0;
    if (remaining != NULL)
        *remaining = 0;
    pthread_mutex_lock(&lock);
    rec_begin(&r, "Cleanup");
    rec_params(&r, params);
    rec_end(&r, VIX_OK);
    pthread_mutex_unlock(&lock);
    return VIX_OK;
}

/* ---- connections ----------------------------------------------------- */

/* ConnectEx checks what vCenter would refuse outright; the thumbprint is not
 * checked here but when a disk is opened, as VDDK does. */
static VixError check_connect(const VixDiskLibConnectParams *params, const char *snapshot)
{
    VixError result;
    if (!initialized)
        return VIX_E_DISK_NOINIT;
    if (params == NULL || params->serverName == NULL || params->serverName[0] == '\0'
        || params->vmxSpec == NULL || strncmp(params->vmxSpec, "moref=", 6) != 0)
        return VIX_E_INVALID_ARG;
    if (cfg.n_vms > 0 && !in_list(cfg.vms, cfg.n_vms, params->vmxSpec + 6))
        return VIX_E_VM_NOT_FOUND;
    if ((result = check_credentials(params)) != VIX_OK)
        return result;
    /* "snapshot=*" stands for a snapshot the test creates through vCenter
       during the run; tests check the moref it was given in the call log. */
    if (snapshot != NULL && !in_list(cfg.snapshots, cfg.n_snapshots, snapshot)
        && !in_list(cfg.snapshots, cfg.n_snapshots, "*"))
        return VIX_E_SNAPSHOT_NOTFOUND;
    return VIX_OK;
}

EXPORT VixError VixDiskLib_ConnectEx(const VixDiskLibConnectParams *params, char read_only,
                                     const char *snapshot, const char *transport_modes,
                                     void **connection)
{
    struct record r;
    struct connection *conn = NULL;
    VixError result;

    pthread_mutex_lock(&lock);
    config_load();
    result = check_connect(params, snapshot);
    if (result == VIX_OK && connection == NULL)
        result = VIX_E_INVALID_ARG;
    if (result == VIX_OK) {
        conn = calloc(1, sizeof *conn);
        if (conn == NULL) {
            result = VIX_E_OUT_OF_MEMORY;
        } else {
            conn->magic = CONN_MAGIC;
            conn->vmx = strdup(params->vmxSpec);
            conn->snapshot = snapshot ? strdup(snapshot) : NULL;
            conn->transports = transport_modes ? strdup(transport_modes) : NULL;
            conn->read_only = read_only != 0;
            conn->thumbprint_ok = cfg.thumbprint != NULL && params->thumbPrint != NULL
                                  && strcasecmp(cfg.thumbprint, params->thumbPrint) == 0;
            *connection = conn;
        }
    }
    rec_begin(&r, "ConnectEx");
    rec_params(&r, params);
    rec_number(&r, "readOnly", read_only != 0);
    rec_string(&r, "snapshotRef", snapshot);
    rec_string(&r, "transportModes", transport_modes);
    rec_number(&r, "accessPrepared", params != NULL && params->vmxSpec != NULL
               && strncmp(params->vmxSpec, "moref=", 6) == 0 && prepared_index(params->vmxSpec + 6) >= 0);
    rec_end(&r, result);
    pthread_mutex_unlock(&lock);
    /* Echo the session like a chatty library: the binding must redact it. */
    if (params != NULL && params->credType == VIXDISKLIB_CRED_SESSIONID && params->creds.sessionId.cookie)
        emit("VixDiskLib: ConnectEx to %s with session %s: %s\n", params->serverName,
             params->creds.sessionId.cookie, error_text(result));
    return result;
}

EXPORT VixError VixDiskLib_Disconnect(void *connection)
{
    struct record r;
    struct connection *conn = connection;
    VixError result = VIX_OK;
    pthread_mutex_lock(&lock);
    if (conn == NULL || conn->magic != CONN_MAGIC) {
        result = VIX_E_INVALID_ARG;
    } else {
        conn->magic = 0;
        free(conn->vmx);
        free(conn->snapshot);
        free(conn->transports);
        free(conn);
    }
    rec_begin(&r, "Disconnect");
    rec_end(&r, result);
    pthread_mutex_unlock(&lock);
    return result;
}

/* ---- disks ------------------------------------------------------------ */

/* "[DS] dir/disk.vmdk" -> local descriptor path, or NULL. */
static char *local_path(const char *path)
{
    const char *close_bracket, *rest;
    char *name, *result = NULL;
    int i;
    if (path == NULL || path[0] != '[' || (close_bracket = strchr(path, ']')) == NULL)
        return NULL;
    name = strndup(path + 1, (size_t)(close_bracket - path - 1));
    rest = close_bracket + 1;
    while (*rest == ' ')
        rest++;
    if (strstr(rest, "..") == NULL) {
        for (i = 0; i < cfg.n_ds; i++)
            if (strcmp(cfg.ds_name[i], name) == 0) {
                if (asprintf(&result, "%s/%s", cfg.ds_dir[i], rest) < 0)
                    result = NULL;
                break;
            }
    }
    free(name);
    return result;
}

/* Parse the descriptor's extent line: RW <sectors> VMFS "<file>". */
static VixError read_descriptor(const char *descriptor, char **flat, uint64_t *capacity)
{
    FILE *file = fopen(descriptor, "r");
    char line[1024], access[16], kind[32], name[512];
    unsigned long long sectors;
    const char *slash;

    *flat = NULL;
    if (file == NULL)
        return VIX_E_FILE_NOT_FOUND;
    while (fgets(line, sizeof line, file) != NULL) {
        if (sscanf(line, "%15s %llu %31s \"%511[^\"]\"", access, &sectors, kind, name) == 4
            && (strcmp(access, "RW") == 0 || strcmp(access, "RDONLY") == 0)) {
            slash = strrchr(descriptor, '/');
            if (asprintf(flat, "%.*s/%s", (int)(slash - descriptor), descriptor, name) < 0)
                *flat = NULL;
            *capacity = sectors;
            break;
        }
    }
    fclose(file);
    return *flat ? VIX_OK : VIX_E_FILE_ERROR;
}

static void note(char *notes, size_t size, const char *fmt, const char *mode, const char *path)
{
    size_t used = strlen(notes);
    if (used < size)
        snprintf(notes + used, size - used, fmt, mode, path);
}

/* The first mode of the caller's list this "host" can use for the disk; when
 * none is usable VDDK does not fail the Open but falls back (to NBDSSL), so
 * the caller must compare GetTransportMode with what it allowed.  Why each
 * mode was passed over goes into notes, for the warning callback. */
static const char *choose_mode(const struct connection *conn, const char *path, int encrypted, int *fell_back,
                               char *notes, size_t size)
{
    char modes[256], *mode, *save = NULL;
    snprintf(modes, sizeof modes, "%s", conn->transports ? conn->transports : "file:san:hotadd:nbdssl:nbd");
    *fell_back = 0;
    for (mode = strtok_r(modes, ":", &save); mode; mode = strtok_r(NULL, ":", &save)) {
        if (strcmp(mode, "san") == 0) {
            note(notes, size, encrypted ? "VixDiskLib: cannot use mode %s for %s: encrypted disks are not "
                                          "supported with SAN\n"
                                        : "VixDiskLib: cannot use mode %s for %s: no SAN path to the datastore\n",
                 mode, path);
        } else if (strcmp(mode, "hotadd") == 0) {
            if (!cfg.hotadd)
                note(notes, size, "VixDiskLib: cannot use mode %s for %s: not running in a proxy VM\n", mode, path);
            else if (encrypted && !cfg.proxy_encrypted)
                note(notes, size, "VixDiskLib: cannot use mode %s for %s: the proxy VM is not encrypted\n", mode,
                     path);
            else
                return "hotadd";
        } else if (strcmp(mode, "nbdssl") == 0) {
            return "nbdssl";
        } else if (strcmp(mode, "nbd") == 0) {
            if (encrypted)
                note(notes, size, "VixDiskLib: cannot use mode %s for %s: encrypted disk needs nbdssl\n", mode, path);
            else
                return "nbd";
        }
    }
    *fell_back = 1;
    return strcmp(cfg.fallback_mode, "nbd") == 0 ? "nbd" : "nbdssl";
}

EXPORT VixError VixDiskLib_Open(const void *connection, const char *path, uint32_t flags, void **handle)
{
    struct record r;
    const struct connection *conn = connection;
    struct disk *disk = NULL;
    char *descriptor = NULL, *flat = NULL, notes[2048] = "";
    uint64_t capacity = 0;
    const char *mode = NULL;
    int read_only = (flags & VIXDISKLIB_FLAG_OPEN_READ_ONLY) != 0, fd = -1;
    int encrypted = 0, fell_back = 0, bad_thumbprint = 0, in_use = 0;
    VixError result = VIX_OK;

    pthread_mutex_lock(&lock);
    if (conn == NULL || conn->magic != CONN_MAGIC || handle == NULL)
        result = VIX_E_INVALID_ARG;
    else if (conn->lost)
        result = VIX_E_HOST_TCP_CONN_LOST;
    else if (!conn->thumbprint_ok) {
        /* VDDK meets the host's certificate only now, and says "Unknown error". */
        bad_thumbprint = 1;
        result = VIX_E_FAIL;
    } else if (!read_only && conn->read_only)
        result = VIX_E_FILE_READ_ONLY;
    else if (!read_only && in_list(cfg.powered_on, cfg.n_powered_on, conn->vmx + 6)) {
        /* the running VM holds its disks: no write access while it is powered on */
        in_use = 1;
        result = VIX_E_FILE_ALREADY_LOCKED;
    } else if ((descriptor = local_path(path)) == NULL)
        result = VIX_E_FILE_NAME_INVALID;
    else
        result = read_descriptor(descriptor, &flat, &capacity);
    if (result == VIX_OK) {
        encrypted = in_list(cfg.encrypted, cfg.n_encrypted, path);
        mode = choose_mode(conn, path, encrypted, &fell_back, notes, sizeof notes);
    }
    if (result == VIX_OK) {
        fd = open(flat, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
        if (fd < 0)
            result = errno == ENOENT ? VIX_E_FILE_NOT_FOUND : VIX_E_FILE_ERROR;
    }
    if (result == VIX_OK) {
        disk = calloc(1, sizeof *disk);
        if (disk == NULL) {
            close(fd);
            result = VIX_E_OUT_OF_MEMORY;
        } else {
            disk->magic = DISK_MAGIC;
            disk->conn = (struct connection *)conn;
            disk->fd = fd;
            /* reads and QueryAllocatedBlocks keep the buffered descriptor */
            disk->direct_fd = read_only || cfg.write_buffered ? -1 : open(flat, O_WRONLY | O_DIRECT | O_CLOEXEC);
            disk->capacity = capacity;
            disk->read_only = read_only;
            disk->mode = mode;
            disk->path = strdup(path);
            *handle = disk;
        }
    }
    rec_begin(&r, "Open");
    rec_string(&r, "path", path);
    rec_number(&r, "flags", flags);
    rec_number(&r, "encrypted", encrypted);
    rec_string(&r, "mode", result == VIX_OK ? mode : NULL);
    rec_number(&r, "fallback", fell_back);
    rec_end(&r, result);
    pthread_mutex_unlock(&lock);
    free(descriptor);
    free(flat);
    if (notes[0])
        warn("%s", notes);
    if (fell_back && result == VIX_OK)
        warn("VixDiskLib: no requested transport mode (%s) is usable for %s; falling back to %s\n",
             conn->transports ? conn->transports : "default", path, mode);
    if (in_use)
        warn("VixDiskLib: cannot open %s for writing: the virtual machine %s is powered on and uses the disk\n",
             path, conn->vmx + 6);
    if (bad_thumbprint)
        warn("VixDiskLibVim: SSL: the server's certificate does not match the thumbprint given for %s\n", path);
    return result;
}

static void async_drain(struct disk *disk);
static void async_stop(struct disk *disk);
static void network_round_trip(const struct disk *disk, const struct timespec *made);

static struct disk *valid_disk(void *handle)
{
    struct disk *disk = handle;
    return disk != NULL && disk->magic == DISK_MAGIC ? disk : NULL;
}

EXPORT const char *VixDiskLib_GetTransportMode(void *handle)
{
    struct disk *disk = valid_disk(handle);
    return disk ? disk->mode : NULL;
}

EXPORT VixError VixDiskLib_Close(void *handle)
{
    struct record r;
    struct disk *disk = valid_disk(handle);
    VixError result = VIX_OK;
    if (disk != NULL)
        async_stop(disk);  /* requests still queued complete, and their callbacks run, first */
    pthread_mutex_lock(&lock);
    rec_begin(&r, "Close");
    if (disk == NULL) {
        result = VIX_E_INVALID_ARG;
    } else {
        rec_string(&r, "path", disk->path);
        disk->magic = 0;
        close(disk->fd);
        if (disk->direct_fd >= 0)
            close(disk->direct_fd);
        free(disk->bounce);
        free(disk->path);
        free(disk);
    }
    rec_end(&r, result);
    pthread_mutex_unlock(&lock);
    return result;
}

EXPORT VixError VixDiskLib_GetInfo(void *handle, VixDiskLibInfo **info)
{
    struct disk *disk = valid_disk(handle);
    VixDiskLibInfo *result;
    if (disk == NULL || info == NULL)
        return VIX_E_INVALID_ARG;
    if (disk->conn->lost)
        return VIX_E_HOST_TCP_CONN_LOST;
    result = calloc(1, sizeof *result);
    if (result == NULL)
        return VIX_E_OUT_OF_MEMORY;
    result->capacity = disk->capacity;
    result->biosGeo.heads = result->physGeo.heads = 255;
    result->biosGeo.sectors = result->physGeo.sectors = 63;
    result->biosGeo.cylinders = result->physGeo.cylinders = (uint32_t)(disk->capacity / (255 * 63));
    result->adapterType = 3; /* LSI Logic */
    result->numLinks = 1;
    result->parentFileNameHint = NULL;
    result->uuid = strdup("60 00 c2 9a 7e 3b 51 d0-8d 4c 0b 2a 11 22 33 44");
    result->logicalSectorSize = VIXDISKLIB_SECTOR_SIZE;
    result->physicalSectorSize = VIXDISKLIB_SECTOR_SIZE;
    *info = result;
    return VIX_OK;
}

EXPORT void VixDiskLib_FreeInfo(VixDiskLibInfo *info)
{
    if (info != NULL) {
        free(info->parentFileNameHint);
        free(info->uuid);
        free(info);
    }
}

static VixError check_range(const struct disk *disk, uint64_t start, uint64_t count)
{
    if (start > disk->capacity || count > disk->capacity - start)
        return VIX_E_DISK_OUTOFRANGE;
    return VIX_OK;
}

/* NBD and NBDSSL go through the host's NFC server, which fails to allocate
 * large requests (nbdkit's VDDK plugin advises at most 2 MiB). */
static int too_large(const struct disk *disk, uint64_t count)
{
    return cfg.max_request > 0 && strncmp(disk->mode, "nbd", 3) == 0
           && count * VIXDISKLIB_SECTOR_SIZE > (uint64_t)cfg.max_request;
}

static void nfc_error(unsigned long long bytes)
{
    warn("[NFC ERROR] NfcFssrvrProcessErrorMsg: received NFC error 5 from server: Failed to allocate the "
         "requested %llu bytes\n", bytes + 24);
}

/* The configured faults of one Read or Write (called with the global lock held): the connection
 * is lost once it has served drop_after requests (counted in *served), and a request covering the
 * byte at error_offset fails as the disk's I/O error. */
static VixError injected_fault(struct connection *conn, long *served, long drop_after, long long error_offset,
                               uint64_t start, uint64_t count)
{
    (*served)++;
    if (drop_after > 0 && *served > drop_after) {
        conn->lost = 1;
        return VIX_E_HOST_TCP_CONN_LOST;
    }
    if (error_offset >= 0 && (uint64_t)error_offset >= start * VIXDISKLIB_SECTOR_SIZE
        && (uint64_t)error_offset < (start + count) * VIXDISKLIB_SECTOR_SIZE)
        return VIX_E_DISK_NOIO;
    return VIX_OK;
}

static void pause_ms(long ms)
{
    if (ms > 0) {
        struct timespec pause = { ms / 1000, (ms % 1000) * 1000000L };
        nanosleep(&pause, NULL);
    }
}

EXPORT VixError VixDiskLib_Read(void *handle, uint64_t start, uint64_t count, unsigned char *buffer)
{
    struct record r;
    struct disk *disk = valid_disk(handle);
    VixError result = VIX_OK;
    unsigned long long nfc_refusal = 0;
    long delay;
    struct timespec made;

    async_drain(disk);  /* a read sees the writes queued before it */
    clock_gettime(CLOCK_MONOTONIC, &made);
    pthread_mutex_lock(&lock);
    if (disk == NULL || buffer == NULL)
        result = VIX_E_INVALID_ARG;
    else if (disk->conn->lost)
        result = VIX_E_HOST_TCP_CONN_LOST;
    else if (too_large(disk, count)) {
        nfc_refusal = count * VIXDISKLIB_SECTOR_SIZE;
        result = VIX_E_OUT_OF_MEMORY;
    } else if ((result = check_range(disk, start, count)) == VIX_OK) {
        result = injected_fault(disk->conn, &disk->conn->reads, cfg.drop_after_reads, cfg.read_error_offset, start,
                                count);
    }
    delay = cfg.read_delay_ms;
    rec_begin(&r, "Read");
    rec_number(&r, "startSector", start);
    rec_number(&r, "numSectors", count);
    rec_end(&r, result);
    pthread_mutex_unlock(&lock);
    if (nfc_refusal)
        nfc_error(nfc_refusal);
    if (result != VIX_OK)
        return result;
    pause_ms(delay);
    {
        size_t want = (size_t)(count * VIXDISKLIB_SECTOR_SIZE), done = 0;
        while (done < want) {
            ssize_t got = pread(disk->fd, buffer + done, want - done,
                                (off_t)(start * VIXDISKLIB_SECTOR_SIZE + done));
            if (got < 0 && errno == EINTR)
                continue;
            if (got < 0)
                return VIX_E_DISK_NOIO;
            if (got == 0) { /* past the end of a sparse flat file: zeros */
                memset(buffer + done, 0, want - done);
                break;
            }
            done += (size_t)got;
        }
    }
    network_round_trip(disk, &made);
    return VIX_OK;
}

/* One Write through the O_DIRECT descriptor: 0 done, -1 an I/O error, 1 refused (EINVAL: this
 * file system or this alignment cannot do direct I/O).  The caller's buffer may sit anywhere, so it
 * is copied into a page-aligned one; offsets and lengths are whole sectors. */
static int direct_write(struct disk *disk, uint64_t start, size_t want, const unsigned char *buffer)
{
    size_t done = 0;
    if (disk->bounce_size < want) {
        void *bigger = NULL;
        if (posix_memalign(&bigger, 4096, want) != 0)
            return 1;
        free(disk->bounce);
        disk->bounce = bigger;
        disk->bounce_size = want;
    }
    memcpy(disk->bounce, buffer, want);
    while (done < want) {
        ssize_t put = pwrite(disk->direct_fd, disk->bounce + done, want - done,
                             (off_t)(start * VIXDISKLIB_SECTOR_SIZE + done));
        if (put < 0 && errno == EINTR)
            continue;
        if (put < 0 && errno == EINVAL && done == 0)
            return 1;
        if (put <= 0)
            return -1;
        done += (size_t)put;
    }
    return 0;
}

/* Until latency_ms after ``made`` (the request's round trip on an NBD/NBDSSL connection). */
static void network_round_trip(const struct disk *disk, const struct timespec *made)
{
    long latency;
    struct timespec until;
    pthread_mutex_lock(&lock);
    latency = strncmp(disk->mode, "nbd", 3) == 0 ? cfg.latency_ms : 0;
    pthread_mutex_unlock(&lock);
    if (latency <= 0)
        return;
    until.tv_sec = made->tv_sec + latency / 1000;
    until.tv_nsec = made->tv_nsec + (latency % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
        continue;
}

/* Whether a Write may start: the checks a request meets when it is made (a WriteAsync's before
 * VIX_ASYNC is returned).  Logs the call under the global lock. */
static VixError write_admit(struct disk *disk, const char *call, uint64_t start, uint64_t count,
                            const unsigned char *buffer, VixError admitted)
{
    struct record r;
    VixError result = VIX_OK;
    unsigned long long nfc_refusal = 0;

    pthread_mutex_lock(&lock);
    if (disk == NULL || buffer == NULL)
        result = VIX_E_INVALID_ARG;
    else if (disk->conn->lost)
        result = VIX_E_HOST_TCP_CONN_LOST;
    else if (disk->read_only)
        result = VIX_E_FILE_READ_ONLY;
    else if (too_large(disk, count)) {
        nfc_refusal = count * VIXDISKLIB_SECTOR_SIZE;
        result = VIX_E_OUT_OF_MEMORY;
    } else
        result = check_range(disk, start, count);
    rec_begin(&r, call);
    rec_string(&r, "path", disk != NULL ? disk->path : NULL);
    rec_number(&r, "startSector", start);
    rec_number(&r, "numSectors", count);
    rec_string(&r, "cache", disk != NULL && disk->direct_fd >= 0 ? "direct" : "buffered");
    rec_end(&r, result == VIX_OK ? admitted : result);
    pthread_mutex_unlock(&lock);
    if (nfc_refusal)
        nfc_error(nfc_refusal);
    return result;
}

/* The write itself, on an admitted request: the connection may have been lost since, and the
 * faults of the configuration apply here. */
static VixError write_perform(struct disk *disk, uint64_t start, uint64_t count, const unsigned char *buffer)
{
    VixError result = VIX_OK;
    size_t want, done = 0;
    long delay;

    pthread_mutex_lock(&lock);
    if (disk->conn->lost)
        result = VIX_E_HOST_TCP_CONN_LOST;
    else
        result = injected_fault(disk->conn, &disk->conn->writes, cfg.drop_after_writes, cfg.write_error_offset,
                                start, count);
    delay = cfg.write_delay_ms;
    pthread_mutex_unlock(&lock);
    if (result != VIX_OK)
        return result;
    pause_ms(delay);
    want = (size_t)(count * VIXDISKLIB_SECTOR_SIZE);
    if (disk->direct_fd >= 0 && want > 0) {
        switch (direct_write(disk, start, want, buffer)) {
        case 0:
            return VIX_OK;
        case -1:
            return VIX_E_DISK_NOIO;
        default: /* the file system refused this O_DIRECT write: buffered from now on */
            close(disk->direct_fd);
            disk->direct_fd = -1;
        }
    }
    while (done < want) {
        ssize_t put = pwrite(disk->fd, buffer + done, want - done,
                             (off_t)(start * VIXDISKLIB_SECTOR_SIZE + done));
        if (put < 0 && errno == EINTR)
            continue;
        if (put <= 0)
            return VIX_E_DISK_NOIO;
        done += (size_t)put;
    }
    return VIX_OK;
}

EXPORT VixError VixDiskLib_Write(void *handle, uint64_t start, uint64_t count, const unsigned char *buffer)
{
    struct disk *disk = valid_disk(handle);
    struct timespec made;
    VixError result = write_admit(disk, "Write", start, count, buffer, VIX_OK);
    if (result != VIX_OK)
        return result;
    async_drain(disk);  /* a synchronous write comes after the queued ones */
    clock_gettime(CLOCK_MONOTONIC, &made);
    network_round_trip(disk, &made);  /* the data reaches the host, then it is written */
    return write_perform(disk, start, count, buffer);
}

/* ---- WriteAsync and Wait ------------------------------------------------ */

static void *async_io_main(void *arg)
{
    struct disk *disk = arg;
    struct async_queue *q = disk->aio;
    pthread_mutex_lock(&q->mutex);
    for (;;) {
        struct async_request *request;
        while (q->queued == NULL && !q->stopping)
            pthread_cond_wait(&q->changed, &q->mutex);
        if (q->queued == NULL)
            break;
        request = q->queued;
        q->queued = request->next;
        if (q->queued == NULL)
            q->queued_tail = NULL;
        pthread_mutex_unlock(&q->mutex);
        network_round_trip(disk, &request->made);  /* in transit since it was queued */
        request->result = write_perform(disk, request->start, request->count, request->buffer);
        pthread_mutex_lock(&q->mutex);
        request->next = NULL;
        if (q->done_tail != NULL)
            q->done_tail->next = request;
        else
            q->done = request;
        q->done_tail = request;
        pthread_cond_broadcast(&q->changed);
    }
    pthread_mutex_unlock(&q->mutex);
    return NULL;
}

static void *async_callback_main(void *arg)
{
    struct async_queue *q = arg;
    pthread_mutex_lock(&q->mutex);
    for (;;) {
        struct async_request *request;
        while (q->done == NULL && !(q->stopping && q->pending == 0))
            pthread_cond_wait(&q->changed, &q->mutex);
        if (q->done == NULL)
            break;
        request = q->done;
        q->done = request->next;
        if (q->done == NULL)
            q->done_tail = NULL;
        pthread_mutex_unlock(&q->mutex);
        request->callback(request->data, request->result);
        free(request);
        pthread_mutex_lock(&q->mutex);
        q->pending--;
        pthread_cond_broadcast(&q->changed);
    }
    pthread_mutex_unlock(&q->mutex);
    return NULL;
}

static struct async_queue *async_start(struct disk *disk)
{
    struct async_queue *q;
    if (disk->aio != NULL)
        return disk->aio;
    if ((q = calloc(1, sizeof *q)) == NULL)
        return NULL;
    pthread_mutex_init(&q->mutex, NULL);
    pthread_cond_init(&q->changed, NULL);
    disk->aio = q;
    if (pthread_create(&q->io_thread, NULL, async_io_main, disk) != 0) {
        disk->aio = NULL;
        free(q);
        return NULL;
    }
    if (pthread_create(&q->callback_thread, NULL, async_callback_main, q) != 0) {
        pthread_mutex_lock(&q->mutex);
        q->stopping = 1;
        pthread_cond_broadcast(&q->changed);
        pthread_mutex_unlock(&q->mutex);
        pthread_join(q->io_thread, NULL);
        disk->aio = NULL;
        free(q);
        return NULL;
    }
    return q;
}

/* Until every request queued on the disk has run and its callback returned. */
static void async_drain(struct disk *disk)
{
    struct async_queue *q = disk != NULL ? disk->aio : NULL;
    if (q == NULL)
        return;
    pthread_mutex_lock(&q->mutex);
    while (q->pending > 0)
        pthread_cond_wait(&q->changed, &q->mutex);
    pthread_mutex_unlock(&q->mutex);
}

static void async_stop(struct disk *disk)
{
    struct async_queue *q = disk->aio;
    if (q == NULL)
        return;
    async_drain(disk);
    pthread_mutex_lock(&q->mutex);
    q->stopping = 1;
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->mutex);
    pthread_join(q->io_thread, NULL);
    pthread_join(q->callback_thread, NULL);
    pthread_cond_destroy(&q->changed);
    pthread_mutex_destroy(&q->mutex);
    free(q);
    disk->aio = NULL;
}

EXPORT VixError VixDiskLib_WriteAsync(void *handle, uint64_t start, uint64_t count, const unsigned char *buffer,
                                      VixDiskLibCompletionCB callback, void *data)
{
    struct disk *disk = valid_disk(handle);
    struct async_request *request;
    struct async_queue *q;
    VixError result = callback == NULL ? VIX_E_INVALID_ARG
                                       : write_admit(disk, "WriteAsync", start, count, buffer, VIX_ASYNC);
    if (result != VIX_OK)
        return result;
    if ((request = calloc(1, sizeof *request)) == NULL || (q = async_start(disk)) == NULL) {
        free(request);
        return VIX_E_OUT_OF_MEMORY;
    }
    clock_gettime(CLOCK_MONOTONIC, &request->made);
    request->start = start;
    request->count = count;
    request->buffer = buffer;
    request->callback = callback;
    request->data = data;
    pthread_mutex_lock(&q->mutex);
    if (q->queued_tail != NULL)
        q->queued_tail->next = request;
    else
        q->queued = request;
    q->queued_tail = request;
    q->pending++;
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->mutex);
    return VIX_ASYNC;
}

EXPORT VixError VixDiskLib_Wait(void *handle)
{
    struct record r;
    struct disk *disk = valid_disk(handle);
    if (disk != NULL)
        async_drain(disk);
    pthread_mutex_lock(&lock);
    rec_begin(&r, "Wait");
    rec_end(&r, disk == NULL ? VIX_E_INVALID_ARG : VIX_OK);
    pthread_mutex_unlock(&lock);
    return disk == NULL ? VIX_E_INVALID_ARG : VIX_OK;
}

EXPORT VixError VixDiskLib_Flush(void *handle)
{
    struct disk *disk = valid_disk(handle);
    if (disk == NULL)
        return VIX_E_INVALID_ARG;
    return fsync(disk->fd) == 0 ? VIX_OK : VIX_E_DISK_NOIO;
}

/* Allocated chunks from the flat file's data runs, merged into blocks. */
EXPORT VixError VixDiskLib_QueryAllocatedBlocks(void *handle, uint64_t start, uint64_t count,
                                                uint64_t chunk, VixDiskLibBlockList **list)
{
    struct record r;
    struct disk *disk = valid_disk(handle);
    VixDiskLibBlockList *blocks = NULL;
    VixError result = VIX_OK;
    uint32_t used = 0, room = 16;

    pthread_mutex_lock(&lock);
    if (disk == NULL || list == NULL || chunk < VIXDISKLIB_MIN_CHUNK_SIZE || (chunk & (chunk - 1)) != 0
        || start % chunk != 0 || count % chunk != 0 || count / chunk > VIXDISKLIB_MAX_CHUNK_NUMBER)
        result = VIX_E_INVALID_ARG;
    else if (disk->conn->lost)
        result = VIX_E_HOST_TCP_CONN_LOST;
    else
        result = check_range(disk, start, count);
    if (result == VIX_OK && strcmp(cfg.query_blocks, "unsupported") == 0)
        result = VIX_E_NOT_SUPPORTED;
    if (result == VIX_OK && (blocks = malloc(sizeof *blocks + room * sizeof(VixDiskLibBlock))) == NULL)
        result = VIX_E_OUT_OF_MEMORY;
    if (result == VIX_OK && strcmp(cfg.query_blocks, "whole") == 0) {
        /* what VDDK answers on storage that cannot tell: everything is allocated */
        blocks->blocks[0].offset = start;
        blocks->blocks[0].length = count;
        used = 1;
    } else if (result == VIX_OK) {
        const off_t unit = (off_t)(chunk * VIXDISKLIB_SECTOR_SIZE);
        const off_t end = (off_t)((start + count) * VIXDISKLIB_SECTOR_SIZE);
        off_t position = (off_t)(start * VIXDISKLIB_SECTOR_SIZE);
        while (position < end && result == VIX_OK) {
            off_t data = lseek(disk->fd, position, SEEK_DATA), hole, first, last;
            if (data < 0 || data >= end)
                break;
            hole = lseek(disk->fd, data, SEEK_HOLE);
            if (hole < 0 || hole > end)
                hole = end;
            first = data / unit * unit;
            last = (hole + unit - 1) / unit * unit;
            if (last > end)
                last = end;
            if (used > 0 && blocks->blocks[used - 1].offset + blocks->blocks[used - 1].length
                                >= (uint64_t)first / VIXDISKLIB_SECTOR_SIZE) {
                blocks->blocks[used - 1].length = (uint64_t)last / VIXDISKLIB_SECTOR_SIZE
                                                  - blocks->blocks[used - 1].offset;
            } else {
                if (used == room) {
                    VixDiskLibBlockList *grown;
                    room *= 2;
                    grown = realloc(blocks, sizeof *blocks + room * sizeof(VixDiskLibBlock));
                    if (grown == NULL) {
                        result = VIX_E_OUT_OF_MEMORY;
                        break;
                    }
                    blocks = grown;
                }
                blocks->blocks[used].offset = (uint64_t)first / VIXDISKLIB_SECTOR_SIZE;
                blocks->blocks[used].length = (uint64_t)(last - first) / VIXDISKLIB_SECTOR_SIZE;
                used++;
            }
            position = last;
        }
    }
    if (result == VIX_OK) {
        blocks->numBlocks = used;
        *list = blocks;
    } else {
        free(blocks);
    }
    rec_begin(&r, "QueryAllocatedBlocks");
    rec_number(&r, "startSector", start);
    rec_number(&r, "numSectors", count);
    rec_number(&r, "chunkSize", chunk);
    rec_number(&r, "numBlocks", used);
    rec_end(&r, result);
    pthread_mutex_unlock(&lock);
    return result;
}

EXPORT VixError VixDiskLib_FreeBlockList(VixDiskLibBlockList *list)
{
    free(list);
    return VIX_OK;
}
