/* The part of the VDDK 7.x/8.x ABI the double implements, written from the
 * published API description (x86_64 LP64).  Test-only: never shipped. */
#ifndef VMCRYPT_VDDK_ABI_H
#define VMCRYPT_VDDK_ABI_H

#include <stdarg.h>
#include <stdint.h>

typedef uint64_t VixError;

enum {
    VIX_OK = 0,
    VIX_E_FAIL = 1,
    VIX_E_OUT_OF_MEMORY = 2,
    VIX_E_INVALID_ARG = 3,
    VIX_E_FILE_NOT_FOUND = 4,
    VIX_E_OBJECT_IS_BUSY = 5,
    VIX_E_NOT_SUPPORTED = 6,
    VIX_E_FILE_ERROR = 7,
    VIX_E_FILE_READ_ONLY = 11,
    VIX_E_FILE_ALREADY_LOCKED = 15,
    VIX_E_FILE_NAME_INVALID = 22,
    VIX_E_AUTHENTICATION_FAIL = 35,
    VIX_E_VM_NOT_FOUND = 4000,
    VIX_E_SNAPSHOT_NOTFOUND = 13003,
    VIX_E_HOST_TCP_CONN_LOST = 14011,
    VIX_E_DISK_NOINIT = 16001,
    VIX_E_DISK_NOIO = 16002,
    VIX_E_DISK_OUTOFRANGE = 16007,
    VIX_E_CANNOT_CONNECT_TO_HOST = 18000,
    VIX_ASYNC = 25000  /* not an error: WriteAsync/ReadAsync queued the request */
};

#define VIXDISKLIB_FLAG_OPEN_READ_ONLY 4u
#define VIXDISKLIB_SECTOR_SIZE 512u
#define VIXDISKLIB_MIN_CHUNK_SIZE 128u
#define VIXDISKLIB_MAX_CHUNK_NUMBER (512u * 1024u)

typedef void VixDiskLibGenericLogFunc(const char *fmt, va_list args);
typedef void (*VixDiskLibCompletionCB)(void *cbData, VixError result);

typedef enum {
    VIXDISKLIB_CRED_UID = 1,
    VIXDISKLIB_CRED_SESSIONID = 2,
    VIXDISKLIB_CRED_TICKETID = 3,
    VIXDISKLIB_CRED_SSPI = 4,
    VIXDISKLIB_CRED_UNKNOWN = 256
} VixDiskLibCredType;

typedef struct {
    char *vmxSpec;
    char *serverName;
    char *thumbPrint;
    long reserved1;
    VixDiskLibCredType credType;
    union {
        struct { char *userName; char *password; } uid;
        struct { char *cookie; char *userName; char *key; } sessionId;
        void *ticketId;
    } creds;
    uint32_t port;
    uint32_t nfcHostPort;
    char *reserved3;
    char reserved4[8];
    void *reserved5;
    union {
        struct { char *id; char *datastoreMoRef; char *ssId; } vStorageObjSpec;
    } spec;
    int specType;
} VixDiskLibConnectParams;

typedef struct { uint32_t cylinders, heads, sectors; } VixDiskLibGeometry;

typedef struct {
    VixDiskLibGeometry biosGeo;
    VixDiskLibGeometry physGeo;
    uint64_t capacity;
    int adapterType;
    int numLinks;
    char *parentFileNameHint;
    char *uuid;
    uint32_t logicalSectorSize;
    uint32_t physicalSectorSize;
} VixDiskLibInfo;

typedef struct { uint64_t offset; uint64_t length; } VixDiskLibBlock;

typedef struct {
    uint32_t numBlocks;
    VixDiskLibBlock blocks[1];
} VixDiskLibBlockList;

#endif
