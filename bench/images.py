"""The real file-system image of the benchmarks: ``mkfs.ext4 -d <tree>`` of a tree of real files, cached.

An administrator's disks hold operating systems, databases and logs; a file
system made from a real tree (by default /usr: programs, libraries, their
data) stands for them beside the synthetic mix.  The image is built once per
size, tree and file system type in .build/bench-images/ (outside git) and
rebuilt when the tree grows or shrinks by 64 MiB.
"""
import os
import subprocess

MIB = 1 << 20
GIB = 1 << 30


def fs_image(cache_dir, size, tree, fs_type):
    """A ``fs_type`` (ext2/3/4) file system of ``size`` bytes holding a copy of ``tree`` (mkfs -d), cached."""
    tree_bytes = int(subprocess.run(["du", "-sb", tree], stdout=subprocess.PIPE, universal_newlines=True,
                                    check=True).stdout.split()[0])
    name = "%s-%s-%d" % (fs_type, tree.strip("/").replace("/", "_") or "root", size)
    path = os.path.join(cache_dir, name + ".img")
    stamp = "%s %d" % (tree, tree_bytes // (64 * MIB))  # rebuilt when the tree grows or shrinks by 64 MiB
    if os.path.exists(path) and os.path.exists(path + ".stamp") and open(path + ".stamp").read() == stamp:
        return path
    os.makedirs(cache_dir, exist_ok=True)
    print("building %s: mkfs.%s -d %s (%d MiB of files) into %.1f GiB ..."
          % (path, fs_type, tree, tree_bytes // MIB, size / GIB), flush=True)
    partial = path + ".partial"
    with open(partial, "wb") as handle:
        handle.truncate(size)
    command = ["mkfs.%s" % fs_type, "-q", "-F", "-d", tree, partial]
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          check=False)
    if done.returncode:
        os.remove(partial)
        raise SystemExit("%s failed (is --size-gib large enough for %s?): %s"
                         % (" ".join(command), tree, done.stdout[-2000:]))
    os.rename(partial, path)
    with open(path + ".stamp", "w") as handle:
        handle.write(stamp)
    return path


def copy_sparse(source, target):
    subprocess.run(["cp", "--sparse=always", source, target], check=True)
