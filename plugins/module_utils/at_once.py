# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run one function over several items at once, results in the items' order."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from concurrent.futures import ThreadPoolExecutor


def each_at_once(function, items, at_most):
    """[function(item)] in order, up to ``at_most`` at a time; the first failure (in order) is raised after all ran."""
    if len(items) <= 1 or at_most <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(at_most, len(items))) as pool:
        futures = [pool.submit(function, item) for item in items]
    return [future.result() for future in futures]
