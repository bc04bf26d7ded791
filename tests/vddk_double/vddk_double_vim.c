/* The double's stand-in for the libraries VDDK loads by bare name once it is
 * itself loaded (libvixDiskLibVim and the OpenSSL, curl and glib copies in its
 * lib64).  The dynamic loader finds them only through LD_LIBRARY_PATH as it was
 * at process start, so libvixDiskLib.so.8's InitEx fails without it, as VDDK's
 * does.  Test-only: never shipped. */
#define EXPORT __attribute__((visibility("default")))

EXPORT const char *VixDiskLibVim_Version(void)
{
    return "vmcrypt.backup test double";
}
