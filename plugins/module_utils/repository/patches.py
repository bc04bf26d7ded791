# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Block patches: the changed pieces of a block, stored as chunks of their own.

An incremental backup that finds 1 MiB changed inside a 4 MiB block would
otherwise fetch the base chunk, lay the piece over it and hash, compress,
encrypt and store 4 MiB again.  As a patch (``DiskIndex.patches``) only the
changed bytes are stored, and the block reads as its chunk (or zeros) with
the patches laid over it in order.

Every patch is one more chunk to fetch when the block is restored, so a
block is rewritten whole, its patches folded in, once it would carry more
than ``MAX_PATCHES`` of them or once they would cover more than
``MAX_PATCHED_SHARE`` of it: a restore never reads more than 1.5 times a
block's bytes, and never more than nine chunks for one block, however long
the chain of incrementals.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import IntegrityError

MAX_PATCHES = 8
MAX_PATCHED_SHARE = 0.5


def uncovered(patch_list, ranges):
    """The patches of ``patch_list`` that the new (offset, length) ``ranges`` do not cover entirely, in order."""
    def covered(offset, length):
        return any(start <= offset and offset + length <= start + size for start, size in ranges)
    return [patch for patch in patch_list if not covered(patch[0], patch[1])]


def worth_patching(kept, ranges, block_length):
    """True when ``kept`` patches plus new ``ranges`` stay within the limits above."""
    count = len(kept) + len(ranges)
    patched = sum(patch[1] for patch in kept) + sum(length for _offset, length in ranges)
    return count <= MAX_PATCHES and patched <= MAX_PATCHED_SHARE * block_length


def read_block(get, chunk_id, length, patch_list, what):
    """A block's bytes: chunk ``chunk_id`` (zeros when None) with ``patch_list`` laid over it.

    ``get(chunk_id)`` returns a chunk's authenticated plaintext; every
    length is checked against the index before a byte is used.
    """
    if chunk_id is None:
        block = None
    else:
        block = get(chunk_id)
        if len(block) != length:
            raise IntegrityError("%s: its chunk has %d bytes, the index says %d" % (what, len(block), length))
        if not patch_list:
            return block
    block = bytearray(length) if block is None else bytearray(block)
    for offset, size, piece_id in patch_list:
        piece = get(piece_id)
        if len(piece) != size:
            raise IntegrityError("%s: a patch at %d has %d bytes, the index says %d" % (what, offset, len(piece), size))
        block[offset:offset + size] = piece
    return bytes(block)
