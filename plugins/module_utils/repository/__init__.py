# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The encrypted, deduplicating backup repository (format in docs/repository-format.md).

Plain Python, importable without Ansible.  ``repository.Repository`` is the
facade; the other files are one concept each.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type
